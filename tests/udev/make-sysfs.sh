#!/usr/bin/env bash
# Rebuilds sysfs/, the recorded sysfs tree the udev tests read (test_port_udev.c and
# ports-udev.sh): the layout Linux gives a bench of four adapters on a hub at 1-1 (paths and
# attribute files as in /sys, trimmed to what espstation reads). Kept in git as it is; run this
# only to change the bench.
#   1-1.2  CH340 (1a86:7523, no serial number)          ttyUSB1
#   1-1.3  FT2232H (0403:6010), two interfaces          ttyUSB2 (1.0), ttyUSB3 (1.1)
#   1-1.4  CP2102 (10c4:ea60)                           ttyUSB0
#   1-1.10 ESP32-S3 USB Serial/JTAG (303a:1001), ACM    ttyACM0
# plus a platform UART (ttyS0) and a virtual console (tty0) that get no rule.
set -euo pipefail
cd "$(dirname "$0")"
rm -rf sysfs
mkdir -p sysfs/class/tty
hub=devices/pci0000:00/0000:00:14.0/usb1/1-1

usb_device() { # location vid pid devnum manufacturer product [serial]
    local d=sysfs/$hub/$1
    mkdir -p "$d"
    echo "$2" >"$d/idVendor"
    echo "$3" >"$d/idProduct"
    echo 1 >"$d/busnum"
    echo "$4" >"$d/devnum"
    echo "$5" >"$d/manufacturer"
    echo "$6" >"$d/product"
    [ -z "${7:-}" ] || echo "$7" >"$d/serial"
}

usb_serial_tty() { # location interface tty: a usb-serial driver's port (cp210x, ch341, ftdi_sio)
    local rel=$hub/$1/$1:$2/$3/tty/$3
    mkdir -p "sysfs/$rel"
    ln -s "../../../$3" "sysfs/$rel/device"
    ln -s "../../$rel" "sysfs/class/tty/$3"
}

acm_tty() { # location interface tty: cdc_acm hangs the tty off the interface itself
    local rel=$hub/$1/$1:$2/tty/$3
    mkdir -p "sysfs/$rel"
    ln -s "../../../$1:$2" "sysfs/$rel/device"
    ln -s "../../$rel" "sysfs/class/tty/$3"
}

usb_device 1-1.2 1a86 7523 5 "" "USB Serial"
usb_serial_tty 1-1.2 1.0 ttyUSB1
usb_device 1-1.3 0403 6010 6 FTDI "Dual RS232-HS" FT5Y3K2A
usb_serial_tty 1-1.3 1.0 ttyUSB2
usb_serial_tty 1-1.3 1.1 ttyUSB3
usb_device 1-1.4 10c4 ea60 7 "Silicon Labs" "CP2102 USB to UART Bridge Controller" 0001
usb_serial_tty 1-1.4 1.0 ttyUSB0
usb_device 1-1.10 303a 1001 9 Espressif "USB JTAG/serial debug unit" F4:12:FA:5B:3C:10
acm_tty 1-1.10 1.0 ttyACM0

mkdir -p sysfs/devices/platform/serial8250/tty/ttyS0
ln -s ../../../serial8250 sysfs/devices/platform/serial8250/tty/ttyS0/device
ln -s ../../devices/platform/serial8250/tty/ttyS0 sysfs/class/tty/ttyS0
mkdir -p sysfs/devices/virtual/tty/tty0
echo 4:0 >sysfs/devices/virtual/tty/tty0/dev # no device link: a virtual console
ln -s ../../devices/virtual/tty/tty0 sysfs/class/tty/tty0
