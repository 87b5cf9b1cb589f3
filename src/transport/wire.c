/* The control-plane message codec (see wire.h for the layout). Encoding
 * grows one buffer; decoding checks every length against the bytes it was
 * given before it looks at them, since the bytes come from the network. */
#include "transport/wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

static void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_le32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int reserve(dv_wire_buf_t *b, size_t more)
{
    if (b->failed)
        return -1;
    if (more > SIZE_MAX - b->len) {
        b->failed = E2BIG;
        return -1;
    }
    size_t need = b->len + more;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) {
        b->failed = ENOMEM;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int dv__wire_begin(dv_wire_buf_t *b, uint16_t type, uint64_t id,
                   size_t body_hint, dv_error_t *err)
{
    if (type == 0 || type > DV_WIRE_TYPE_MAX)
        return dv__errprintf(err, EINVAL, "wire: unknown message type %u",
                             (unsigned)type);
    b->len = 0;
    b->failed = 0;
    if (body_hint > DV_WIRE_MAX_BODY)
        body_hint = DV_WIRE_MAX_BODY;
    if (reserve(b, DV_WIRE_HEADER_SIZE + body_hint) < 0)
        return dv__errprintf(err, ENOMEM, "wire: out of memory");
    memset(b->data, 0, DV_WIRE_HEADER_SIZE);
    put_le32(b->data, DV_WIRE_MAGIC);
    put_le16(b->data + 4, DV_WIRE_VERSION);
    put_le16(b->data + 6, type);
    put_le64(b->data + 8, id);
    b->len = DV_WIRE_HEADER_SIZE;
    return 0;
}

void dv__wire_put(dv_wire_buf_t *b, uint16_t tag, const void *data, size_t len)
{
    if (b->failed || !b->data)
        return;
    uint16_t n = get_le16(b->data + 16);
    if (n >= DV_WIRE_MAX_FIELDS || len > DV_WIRE_MAX_BODY) {
        b->failed = E2BIG;
        return;
    }
    if (reserve(b, DV_WIRE_FIELD_HEADER_SIZE + len) < 0)
        return;
    uint8_t *p = b->data + b->len;
    put_le16(p, tag);
    put_le32(p + 2, (uint32_t)len);
    if (len)
        memcpy(p + DV_WIRE_FIELD_HEADER_SIZE, data, len);
    b->len += DV_WIRE_FIELD_HEADER_SIZE + len;
    put_le16(b->data + 16, (uint16_t)(n + 1));
}

void dv__wire_put_u64(dv_wire_buf_t *b, uint16_t tag, uint64_t v)
{
    uint8_t le[8];
    put_le64(le, v);
    dv__wire_put(b, tag, le, sizeof(le));
}

void dv__wire_put_str(dv_wire_buf_t *b, uint16_t tag, const char *s)
{
    dv__wire_put(b, tag, s, strlen(s));
}

int dv__wire_end(dv_wire_buf_t *b, dv_error_t *err)
{
    if (!b->data)
        return dv__errprintf(err, EINVAL, "wire: message not begun");
    if (!b->failed && b->len - DV_WIRE_HEADER_SIZE > DV_WIRE_MAX_BODY)
        b->failed = E2BIG;
    if (b->failed == ENOMEM)
        return dv__errprintf(err, ENOMEM, "wire: out of memory");
    if (b->failed)
        return dv__errprintf(err, E2BIG,
                             "wire: message over %d fields or %u bytes",
                             DV_WIRE_MAX_FIELDS, DV_WIRE_MAX_BODY);
    put_le32(b->data + 20, (uint32_t)(b->len - DV_WIRE_HEADER_SIZE));
    return 0;
}

void dv__wire_buf_release(dv_wire_buf_t *b)
{
    if (!b)
        return;
    free(b->data);
    memset(b, 0, sizeof(*b));
}

uint8_t *dv__wire_buf_take(dv_wire_buf_t *b, size_t *len)
{
    uint8_t *p = b->data;
    *len = b->len;
    memset(b, 0, sizeof(*b));
    return p;
}

static int check_header(const uint8_t *p, size_t len, dv_wire_view_t *v,
                        dv_error_t *err)
{
    if (len < DV_WIRE_HEADER_SIZE)
        return dv__errprintf(err, EPROTO, "wire: short message (%zu bytes)",
                             len);
    if (get_le32(p) != DV_WIRE_MAGIC)
        return dv__errprintf(err, EPROTO, "wire: not a drover message");
    v->version = get_le16(p + 4);
    if (v->version != DV_WIRE_VERSION)
        return dv__errprintf(err, EPROTO,
                             "wire: peer speaks protocol version %u, this "
                             "drover speaks version %u",
                             (unsigned)v->version, DV_WIRE_VERSION);
    v->type = get_le16(p + 6);
    if (v->type == 0 || v->type > DV_WIRE_TYPE_MAX)
        return dv__errprintf(err, EPROTO, "wire: unknown message type %u",
                             (unsigned)v->type);
    v->id = get_le64(p + 8);
    v->nfields = get_le16(p + 16);
    if (v->nfields > DV_WIRE_MAX_FIELDS || get_le16(p + 18) != 0)
        return dv__errprintf(err, EPROTO, "wire: bad header");
    if (get_le32(p + 20) != len - DV_WIRE_HEADER_SIZE)
        return dv__errprintf(err, EPROTO,
                             "wire: body length %u but %zu bytes follow",
                             get_le32(p + 20), len - DV_WIRE_HEADER_SIZE);
    return 0;
}

int dv__wire_decode(const void *buf, size_t len, dv_wire_view_t *v,
                    dv_error_t *err)
{
    const uint8_t *p = buf;
    memset(v, 0, sizeof(*v));
    if (!buf && len)
        return dv__errprintf(err, EPROTO, "wire: no buffer");
    if (check_header(p, len, v, err) < 0)
        return -1;
    size_t off = DV_WIRE_HEADER_SIZE;
    for (uint16_t i = 0; i < v->nfields; i++) {
        if (len - off < DV_WIRE_FIELD_HEADER_SIZE)
            return dv__errprintf(err, EPROTO, "wire: field %u truncated", i);
        uint32_t flen = get_le32(p + off + 2);
        if (flen > len - off - DV_WIRE_FIELD_HEADER_SIZE)
            return dv__errprintf(err, EPROTO,
                                 "wire: field %u says %u bytes, %zu left", i,
                                 flen, len - off - DV_WIRE_FIELD_HEADER_SIZE);
        v->fields[i].tag = get_le16(p + off);
        v->fields[i].len = flen;
        v->fields[i].data = p + off + DV_WIRE_FIELD_HEADER_SIZE;
        off += DV_WIRE_FIELD_HEADER_SIZE + (size_t)flen;
    }
    if (off != len)
        return dv__errprintf(err, EPROTO, "wire: %zu bytes after the fields",
                             len - off);
    return 0;
}

const dv_wire_field_t *dv__wire_find(const dv_wire_view_t *v, uint16_t tag)
{
    for (uint16_t i = 0; i < v->nfields && i < DV_WIRE_MAX_FIELDS; i++)
        if (v->fields[i].tag == tag)
            return &v->fields[i];
    return NULL;
}

int dv__wire_get_u64(const dv_wire_view_t *v, uint16_t tag, uint64_t *out,
                     dv_error_t *err)
{
    const dv_wire_field_t *f = dv__wire_find(v, tag);
    if (!f)
        return dv__errprintf(err, ENOENT, "wire: %s message lacks field %u",
                             dv__wire_type_name(v->type), (unsigned)tag);
    if (f->len != 8)
        return dv__errprintf(err, EPROTO, "wire: field %u has %u bytes, not 8",
                             (unsigned)tag, f->len);
    *out = get_le64(f->data);
    return 0;
}

int dv__wire_get_str(const dv_wire_view_t *v, uint16_t tag, char *out, size_t n,
                     dv_error_t *err)
{
    const dv_wire_field_t *f = dv__wire_find(v, tag);
    if (!f)
        return dv__errprintf(err, ENOENT, "wire: %s message lacks field %u",
                             dv__wire_type_name(v->type), (unsigned)tag);
    if (f->len && memchr(f->data, '\0', f->len))
        return dv__errprintf(err, EPROTO, "wire: field %u: NUL in text",
                             (unsigned)tag);
    if ((size_t)f->len >= n)
        return dv__errprintf(err, ENAMETOOLONG,
                             "wire: field %u: %u bytes of text, room for %zu",
                             (unsigned)tag, f->len, n ? n - 1 : 0);
    if (f->len)
        memcpy(out, f->data, f->len);
    out[f->len] = '\0';
    return 0;
}

const char *dv__wire_type_name(uint16_t type)
{
    static const char *const names[] = {
        "unknown",
        "hello",
        "welcome",
        "heartbeat",
        "spawn",
        "exited",
        "output",
        "kill",
        "error",
        "ping",
        "pong",
        "started",
        "obj-op",
        "obj-reply",
        "node-lost",
        "output-ack",
        [DV_WIRE_TREE_LOST] = "tree-lost",
    };
    _Static_assert(sizeof(names) / sizeof(names[0]) == DV_WIRE_TYPE_MAX + 1,
                   "a name for every message type");
    if (type > DV_WIRE_TYPE_MAX || !names[type])
        return names[0];
    return names[type];
}
