# Install rules and the Debian package (issue 15 #1). Included last from CMakeLists.txt, so every
# directory's install() rules are known when CPack is set up.
#
# Components: "station" (the default component, set in CMakeLists.txt before any directory is
# added, so install() rules that name no component land in it) is the espstation package;
# "sim" (espsim, the board simulator) is a separate package, espstation-sim, and is left out of
# a plain `cmake --install` (install it with `--component sim`).
#
#   cmake --install build/pkg --prefix /usr/local          # espstation, stubs, docs, man, completion
#   cmake --install build/pkg --prefix /usr/local --component sim
#   (cd build/pkg && cpack -G DEB)                         # espstation_*.deb, espstation-sim_*.deb
include(GNUInstallDirs)

install(TARGETS espstation RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT station)
if(TARGET espsim)
  install(TARGETS espsim RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT sim
          EXCLUDE_FROM_ALL)
endif()

# The flasher stubs (esptool-js's JSON files), found at run time as ../share/espstation/stubs
# next to the binary (es/install_dir.h). Keep in step with ES_INSTALL_STUB_DIR.
if(IS_DIRECTORY "${ESPSTATION_STUB_DIR}")
  install(DIRECTORY "${ESPSTATION_STUB_DIR}/" DESTINATION ${CMAKE_INSTALL_DATADIR}/espstation/stubs
          COMPONENT station FILES_MATCHING PATTERN "*.json")
else()
  message(WARNING "no flasher stubs in ${ESPSTATION_STUB_DIR} (run tools/setup-deps.sh): the "
                  "installed espstation would have none")
endif()

# The shipped profiles and their demo images, as examples; the copyright file in the Debian
# machine-readable format.
install(DIRECTORY ${CMAKE_SOURCE_DIR}/profiles/ DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/espstation/examples
        COMPONENT station)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/deb/copyright
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/espstation COMPONENT station)
if(TARGET espsim)
  install(FILES ${CMAKE_SOURCE_DIR}/packaging/deb/copyright
          DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/espstation-sim COMPONENT sim EXCLUDE_FROM_ALL)
endif()
install(FILES ${CMAKE_SOURCE_DIR}/contrib/bash-completion/espstation
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions COMPONENT station)

# Man pages (scdoc -> roff -> gzip) and the tests of the installed layout.
add_subdirectory(${CMAKE_SOURCE_DIR}/docs/man ${CMAKE_BINARY_DIR}/docs/man)
add_subdirectory(${CMAKE_SOURCE_DIR}/tests/package ${CMAKE_BINARY_DIR}/tests/package)

# --- CPack: the .deb -------------------------------------------------------------------------
set(ESPSTATION_DEB_MAINTAINER "espstation maintainers <maintainers@users.noreply.r-seed-9a1ca8ce.example>"
    CACHE STRING "Maintainer field of the .deb")

# A Debian version must start with a digit, and git describe may be a bare hash: the project
# version, plus what git describe says when it differs ("0.1.0+gitb9d1193.dirty").
string(REPLACE "-" "." describe_deb "${ESPSTATION_VERSION_FULL}")
if(ESPSTATION_VERSION_FULL STREQUAL PROJECT_VERSION)
  set(CPACK_DEBIAN_PACKAGE_VERSION "${PROJECT_VERSION}")
else()
  set(CPACK_DEBIAN_PACKAGE_VERSION "${PROJECT_VERSION}+git${describe_deb}")
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME espstation)
set(CPACK_PACKAGE_VERSION "${CPACK_DEBIAN_PACKAGE_VERSION}")
set(CPACK_PACKAGE_CONTACT "${ESPSTATION_DEB_MAINTAINER}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL station sim)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${ESPSTATION_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION electronics)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends from dpkg-shlibdeps (libuv1, libserialport0, libyaml-0-2, libssl3, libjansson4, zlib1g):
# the libraries the binaries really link, at the versions this build needs.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)

set(CPACK_DEBIAN_STATION_PACKAGE_NAME espstation)
set(CPACK_DEBIAN_STATION_PACKAGE_SECTION electronics)
# postinst creates the user espstation@.service runs as (lib/sysusers.d/espstation.conf).
set(CPACK_DEBIAN_STATION_PACKAGE_CONTROL_EXTRA "${CMAKE_SOURCE_DIR}/packaging/deb/postinst")
set(CPACK_COMPONENT_STATION_DESCRIPTION
    "flash a bench of ESP8266 and ESP32 boards at once
 espstation flashes firmware onto many ESP8266 (NodeMCU) and ESP32 boards at once over
 their serial ports, from one event loop, speaking the ESP ROM serial bootloader protocol.
 A YAML profile pins every image's SHA-256; each board gets a JSON report, and the run
 keeps a journal. It includes Espressif's flasher stubs (esp-flasher-stub, from
 esptool-js), man pages and bash completion.")

set(CPACK_DEBIAN_SIM_PACKAGE_NAME espstation-sim)
set(CPACK_DEBIAN_SIM_PACKAGE_SECTION electronics)
set(CPACK_COMPONENT_SIM_DESCRIPTION
    "simulated ESP boards for espstation
 espsim simulates a bench of ESP8266 and ESP32 boards behind pseudo-terminals, with their
 ROM bootloader, flash and MicroPython REPL, so espstation can be tried and tested without
 hardware (espstation run PROFILE --simulate N).")

include(CPack)
