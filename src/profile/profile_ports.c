/* The ports list of a profile: each entry is a path or glob, or a USB match on VID:PID, serial
 * number and location. Only the text is read here; finding the ports is src/port's business. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "profile_internal.h"

const char *const profile_port_keys[3] = {"usb", "serial", "location"};

/* Up to 4 hex digits, the whole of [s, e). */
static int parse_hex16(const char *s, const char *e, uint16_t *out)
{
    unsigned v = 0;

    if (e <= s || e - s > 4)
        return -1;
    for (; s < e; s++) {
        int d = profile_hexval(*s);
        if (d < 0)
            return -1;
        v = v << 4 | (unsigned)d;
    }
    *out = (uint16_t)v;
    return 0;
}

static int parse_usb(struct walk *w, const yaml_node_t *n, const char *what,
                     struct profile_port *port)
{
    const char *s, *colon;

    if (n->type != YAML_SCALAR_NODE || profile_is_null(n))
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "%s is %s; write VID:PID in hex, e.g. \"10c4:ea60\"", what,
                            profile_kind(n));
    s = text(n);
    colon = strchr(s, ':');
    if (colon == NULL || parse_hex16(s, colon, &port->usb_vid) < 0 ||
        parse_hex16(colon + 1, colon + 1 + strlen(colon + 1), &port->usb_pid) < 0)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "%s '%s' is not VID:PID; write two groups of up to 4 hex digits, e.g. "
                            "\"10c4:ea60\"",
                            what, s);
    port->has_usb = 1;
    return 0;
}

static int parse_port(struct walk *w, const yaml_node_t *n, size_t index)
{
    struct profile_port *port = &w->p->ports[index];
    yaml_node_t *v[PROFILE_COUNT(profile_port_keys)], *k[PROFILE_COUNT(profile_port_keys)];
    char where[32], what[48];
    int rc;

    snprintf(where, sizeof(where), "ports[%zu]", index);
    port->pos = node_pos(n);
    if (n->type == YAML_SCALAR_NODE)
        return profile_get_string(w, n, where, "a port path or glob such as \"/dev/ttyUSB*\"",
                                  &port->path);
    if (n->type != YAML_MAPPING_NODE)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "%s is %s; write a path or glob, or a mapping with usb, serial or "
                            "location",
                            where, profile_kind(n));
    rc = profile_walk_mapping(w, n, where, profile_port_keys, PROFILE_COUNT(profile_port_keys), v,
                              k);
    if (rc < 0)
        return rc;
    if (v[0] == NULL && v[1] == NULL && v[2] == NULL)
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "%s is an empty mapping; give usb: \"VID:PID\", serial or location",
                            where);
    if (v[0] != NULL) {
        snprintf(what, sizeof(what), "%s.usb", where);
        rc = parse_usb(w, v[0], what, port);
        if (rc < 0)
            return rc;
    }
    if (v[1] != NULL) {
        snprintf(what, sizeof(what), "%s.serial", where);
        rc = profile_get_string(w, v[1], what, "the adapter's USB serial number", &port->serial);
        if (rc < 0)
            return rc;
    }
    if (v[2] != NULL) {
        snprintf(what, sizeof(what), "%s.location", where);
        rc = profile_get_string(w, v[2], what, "a USB location such as \"1-1.4\"", &port->location);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ports is a list; a single path or a single mapping is taken as a list of one. */
int profile_parse_ports(struct walk *w, const yaml_node_t *n)
{
    size_t count = 1;
    int rc;

    w->p->ports_pos = node_pos(n);
    if (n->type == YAML_SEQUENCE_NODE) {
        count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
        if (count == 0)
            return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                                "ports is an empty list; list port paths or globs, or remove "
                                "ports to use the command line or every USB serial port");
        if (count > PROFILE_PORTS_MAX)
            return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                                "ports has %zu entries; at most %d are accepted", count,
                                PROFILE_PORTS_MAX);
    } else if (profile_is_null(n)) {
        return profile_fail(w->err, w->path, node_pos(n), ES_PROFILE,
                            "ports is empty; list port paths or globs such as [\"/dev/ttyUSB*\"], "
                            "or remove the key");
    }
    w->p->ports = calloc(count, sizeof(*w->p->ports));
    if (w->p->ports == NULL)
        return profile_fail(w->err, w->path, node_pos(n), ES_NOMEM, "out of memory");
    w->p->n_ports = count;
    if (n->type != YAML_SEQUENCE_NODE)
        return parse_port(w, n, 0);
    for (size_t i = 0; i < count; i++) {
        rc = parse_port(w, yaml_document_get_node(w->doc, n->data.sequence.items.start[i]), i);
        if (rc < 0)
            return rc;
    }
    return 0;
}
