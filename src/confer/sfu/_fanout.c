/* confer.sfu._fanout: the SFU's per-subscriber forwarding work in C.
 *
 * Forwarding one incoming RTP packet to N subscribers costs, per subscriber: a copy, a header
 * rewrite (payload type, marker, sequence number, timestamp, SSRC, extension IDs, VP8/VP9
 * picture IDs), SRTP protection and a sendto. In Python that per-subscriber work dominated the
 * SFU's CPU; here it is one C loop per incoming packet.
 *
 * Types:
 *   SeqMap  outgoing sequence numbers / timestamps across source switches (see seqmap.py for
 *           the rules: segments with fixed offsets, a new one continues after the last sent).
 *   Munger  VP8/VP9 picture ID and TL0PICIDX continuity across source switches.
 *   Route   one transport's way out: libsrtp's srtp_protect (the function pointer and srtp_t
 *           session that pylibsrtp holds, handed over by adapter.py) and a duplicate of the
 *           nominated pair's UDP socket fd with its remote address. The route owns that
 *           duplicate: if aioice closes its socket, the number it had cannot be reused by an
 *           unrelated file (a TCP stream, a database) that the loop would then write into.
 *   Sink    the base class of tracks.DownTrack: the per-subscriber state the loop reads.
 * Function:
 *   forward(sinks, layer, source, data, now) -> (sent, waiting)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PACKET 1500   /* larger RTP packets are not forwarded */
#define SRTP_TRAILER 144  /* pylibsrtp.SRTP_MAX_TRAILER_LEN: auth tag + MKI */
#define MAX_SEGMENTS 8
#define MAX_EXT 768       /* one-byte elements take at least 2 bytes of a 1500-byte packet */
#define ONE_BYTE_PROFILE 0xBEDE

typedef int (*srtp_fn)(void *ctx, void *hdr, int *len);

/* `now` feeds float-to-integer conversions, which are undefined for NaN and infinities. */
static int finite_time(double now) {
    if (isfinite(now))
        return 1;
    PyErr_SetString(PyExc_ValueError, "now must be a finite number of seconds");
    return 0;
}

/* ------------------------------------------------------------------------------ SeqMap */

typedef struct {
    int64_t source, out_start, seq_offset, ts_offset;
} Segment;

typedef struct {
    PyObject_HEAD
    double clock_rate;
    Segment segs[MAX_SEGMENTS]; /* ring buffer, oldest at `head` */
    int head, count;
    int64_t high_ext; /* extended outgoing seq of the newest packet sent */
    int64_t last_out_ts;
    double last_wall;
    int last_in_seq;
    char restart;
    long long sent;
} SeqMapObject;

static Segment *seg_at(SeqMapObject *m, int i) { return &m->segs[(m->head + i) % MAX_SEGMENTS]; }

static Segment *seg_newest(SeqMapObject *m) { return m->count ? seg_at(m, m->count - 1) : NULL; }

/* 1 with (out_seq, out_ts) set, 0 for a packet too old to place. */
static int seqmap_map(SeqMapObject *m, int64_t source, int seq, uint32_t ts, double now,
                      uint16_t *out_seq, uint32_t *out_ts) {
    Segment *seg = seg_newest(m);
    if (m->restart || seg == NULL || seg->source != source) {
        m->restart = 0;
        int64_t out_start = m->high_ext + 1;
        int64_t ts_step = 0;
        if (m->sent) {
            double d = (now - m->last_wall) * m->clock_rate;
            ts_step = !(d >= 1.0) ? 1 : (d > 1e15 ? (int64_t)1e15 : (int64_t)d);
        }
        if (m->count == MAX_SEGMENTS) {
            m->head = (m->head + 1) % MAX_SEGMENTS;
            m->count--;
        }
        m->count++;
        seg = seg_at(m, m->count - 1);
        seg->source = source;
        seg->out_start = out_start;
        seg->seq_offset = (out_start - seq) & 0xFFFF;
        seg->ts_offset = (m->last_out_ts + ts_step - (int64_t)ts) & 0xFFFFFFFF;
        m->last_in_seq = (seq - 1) & 0xFFFF;
    }
    int delta = ((seq - m->last_in_seq + 0x8000) & 0xFFFF) - 0x8000;
    int64_t out_ext = m->high_ext + delta;
    if (out_ext < seg->out_start)
        return 0;
    uint32_t ts_out = (uint32_t)(((int64_t)ts + seg->ts_offset) & 0xFFFFFFFF);
    if (out_ext > m->high_ext) {
        m->high_ext = out_ext;
        m->last_in_seq = seq;
        m->last_out_ts = ts_out;
        m->last_wall = now;
    }
    m->sent++;
    *out_seq = (uint16_t)(out_ext & 0xFFFF);
    *out_ts = ts_out;
    return 1;
}

static Segment *seqmap_segment_of(SeqMapObject *m, int out_seq, int64_t *out_ext) {
    int64_t back = (m->high_ext - out_seq) & 0xFFFF;
    if (back >= 0x8000)
        return NULL;
    *out_ext = m->high_ext - back;
    for (int i = m->count - 1; i >= 0; i--) {
        Segment *seg = seg_at(m, i);
        if (*out_ext >= seg->out_start)
            return seg;
    }
    return NULL;
}

static int SeqMap_init(SeqMapObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"clock_rate", "first_seq", "first_ts", NULL};
    long long clock_rate, first_seq = 0, first_ts = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "L|LL", kwlist, &clock_rate, &first_seq,
                                     &first_ts))
        return -1;
    if (clock_rate <= 0) {
        PyErr_SetString(PyExc_ValueError, "clock_rate must be positive");
        return -1;
    }
    self->clock_rate = (double)clock_rate;
    self->head = self->count = 0;
    self->high_ext = (first_seq & 0xFFFF) - 1;
    self->last_out_ts = first_ts & 0xFFFFFFFF;
    self->last_wall = 0.0;
    self->last_in_seq = 0;
    self->restart = 1;
    self->sent = 0;
    return 0;
}

static PyObject *SeqMap_restart(SeqMapObject *self, PyObject *Py_UNUSED(ignored)) {
    self->restart = 1;
    Py_RETURN_NONE;
}

static PyObject *SeqMap_map(SeqMapObject *self, PyObject *args) {
    long long source, seq, ts;
    double now;
    if (!PyArg_ParseTuple(args, "LLLd", &source, &seq, &ts, &now) || !finite_time(now))
        return NULL;
    uint16_t out_seq;
    uint32_t out_ts;
    if (!seqmap_map(self, source, (int)(seq & 0xFFFF), (uint32_t)(ts & 0xFFFFFFFF), now,
                    &out_seq, &out_ts))
        Py_RETURN_NONE;
    return Py_BuildValue("(kk)", (unsigned long)out_seq, (unsigned long)out_ts);
}

static PyObject *SeqMap_source_of(SeqMapObject *self, PyObject *arg) {
    long out_seq = PyLong_AsLong(arg);
    if (out_seq == -1 && PyErr_Occurred())
        return NULL;
    int64_t out_ext;
    Segment *seg = seqmap_segment_of(self, (int)(out_seq & 0xFFFF), &out_ext);
    if (seg == NULL)
        Py_RETURN_NONE;
    return Py_BuildValue("(Lk)", (long long)seg->source,
                         (unsigned long)((out_ext - seg->seq_offset) & 0xFFFF));
}

static PyObject *SeqMap_ts_offset_of(SeqMapObject *self, PyObject *arg) {
    long out_seq = PyLong_AsLong(arg);
    if (out_seq == -1 && PyErr_Occurred())
        return NULL;
    int64_t out_ext;
    Segment *seg = seqmap_segment_of(self, (int)(out_seq & 0xFFFF), &out_ext);
    if (seg == NULL)
        Py_RETURN_NONE;
    return PyLong_FromLongLong(seg->ts_offset);
}

static PyObject *SeqMap_get_last_seq(SeqMapObject *self, void *c) {
    return PyLong_FromLongLong(self->high_ext & 0xFFFF);
}

static PyObject *SeqMap_get_last_timestamp(SeqMapObject *self, void *c) {
    return PyLong_FromLongLong(self->last_out_ts);
}

static PyObject *SeqMap_get_ts_offset(SeqMapObject *self, void *c) {
    Segment *seg = seg_newest(self);
    if (seg == NULL)
        Py_RETURN_NONE;
    return PyLong_FromLongLong(seg->ts_offset);
}

static PyMethodDef SeqMap_methods[] = {
    {"restart", (PyCFunction)SeqMap_restart, METH_NOARGS,
     "The next packet opens a new segment even if it comes from the same source."},
    {"map", (PyCFunction)SeqMap_map, METH_VARARGS,
     "map(source, seq, ts, now) -> (out_seq, out_ts), or None for a packet too old to place."},
    {"source_of", (PyCFunction)SeqMap_source_of, METH_O,
     "(source, source seq) of an outgoing sequence number, for NACKs; or None."},
    {"ts_offset_of", (PyCFunction)SeqMap_ts_offset_of, METH_O,
     "The timestamp offset of the segment an outgoing sequence number belongs to; or None."},
    {NULL}};

static PyGetSetDef SeqMap_getset[] = {
    {"last_seq", (getter)SeqMap_get_last_seq, NULL, "newest outgoing sequence number", NULL},
    {"last_timestamp", (getter)SeqMap_get_last_timestamp, NULL, "its timestamp", NULL},
    {"ts_offset", (getter)SeqMap_get_ts_offset, NULL, "the current segment's offset", NULL},
    {NULL}};

static PyMemberDef SeqMap_members[] = {
    {"sent", T_LONGLONG, offsetof(SeqMapObject, sent), READONLY, "packets mapped"},
    {NULL}};

static PyTypeObject SeqMapType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "confer.sfu._fanout.SeqMap",
    .tp_doc = "Maps (source, seq, ts) to outgoing (seq, ts) for one outgoing stream.",
    .tp_basicsize = sizeof(SeqMapObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)SeqMap_init,
    .tp_methods = SeqMap_methods,
    .tp_getset = SeqMap_getset,
    .tp_members = SeqMap_members,
};

/* ------------------------------------------------------------------------------ Munger */

typedef struct {
    int pic;      /* -1: absent */
    int pic_off;  /* offset of the picture id in the payload; 0 when absent */
    int long_id;
    int tl0_off;  /* 0 when absent */
} Descriptor;

/* VP8 payload descriptor (RFC 7741 4.2) within `n` bytes; 0 when malformed. */
static int vp8_descriptor(const uint8_t *p, Py_ssize_t n, Descriptor *d) {
    if (n < 1)
        return 0;
    int pos = 1;
    d->pic = -1;
    d->pic_off = d->tl0_off = d->long_id = 0;
    if (p[0] & 0x80) {
        if (n < 2)
            return 0;
        uint8_t x = p[1];
        pos = 2;
        if (x & 0x80) {
            if (pos >= n)
                return 0;
            d->pic_off = pos;
            if (p[pos] & 0x80) {
                if (pos + 1 >= n)
                    return 0;
                d->pic = ((p[pos] & 0x7F) << 8) | p[pos + 1];
                d->long_id = 1;
                pos += 2;
            } else {
                d->pic = p[pos] & 0x7F;
                pos += 1;
            }
        }
        if (x & 0x40) {
            d->tl0_off = pos;
            pos += 1;
        }
        if (x & 0x30)
            pos += 1;
        if (pos > n)
            return 0;
    }
    return 1;
}

/* VP9 picture id (RFC 9628) within `n` bytes; 0 when absent. */
static int vp9_picture_id(const uint8_t *p, Py_ssize_t n, Descriptor *d) {
    if (n < 2 || !(p[0] & 0x80))
        return 0;
    d->pic_off = 1;
    d->tl0_off = 0;
    if (p[1] & 0x80) {
        if (n < 3)
            return 0;
        d->pic = ((p[1] & 0x7F) << 8) | p[2];
        d->long_id = 1;
    } else {
        d->pic = p[1] & 0x7F;
        d->long_id = 0;
    }
    return 1;
}

static void write_picture_id(uint8_t *p, int long_id, int value) {
    if (long_id) {
        p[0] = 0x80 | ((value >> 8) & 0x7F);
        p[1] = value & 0xFF;
    } else {
        p[0] = value & 0x7F;
    }
}

static int pymod(int a, int m) { return ((a % m) + m) % m; }

typedef struct {
    PyObject_HEAD
    int pic_offset, tl0_offset;
    char switching;
    int last_pic, last_tl0; /* as last sent; -1: absent */
} MungerObject;

static Py_ssize_t window(Py_ssize_t len, Py_ssize_t start, Py_ssize_t size) {
    if (start >= len)
        return 0;
    return len - start < size ? len - start : size;
}

/* Shift the packet's IDs by the current offsets (TL0PICIDX: VP8 only, `d` has none for VP9). */
static void munger_shift(MungerObject *m, uint8_t *buf, Py_ssize_t start, const Descriptor *d) {
    if (d->pic >= 0 && m->pic_offset)
        write_picture_id(buf + start + d->pic_off, d->long_id,
                         (d->pic + m->pic_offset) % (d->long_id ? 0x8000 : 0x80));
    if (d->tl0_off && m->tl0_offset)
        buf[start + d->tl0_off] = (buf[start + d->tl0_off] + m->tl0_offset) & 0xFF;
}

/* Remember the IDs of the packet being sent (what a later switch continues from). */
static void munger_record(MungerObject *m, const uint8_t *buf, Py_ssize_t len, Py_ssize_t start,
                          int vp9) {
    Descriptor d;
    Py_ssize_t n = window(len, start, 6);
    m->last_pic = m->last_tl0 = -1;
    if (vp9) {
        if (vp9_picture_id(buf + start, n, &d))
            m->last_pic = d.pic;
    } else if (vp8_descriptor(buf + start, n, &d)) {
        m->last_pic = d.pic;
        if (d.tl0_off)
            m->last_tl0 = buf[start + d.tl0_off];
    }
}

static void munger_rewrite(MungerObject *m, uint8_t *buf, Py_ssize_t len, Py_ssize_t start,
                           int vp9) {
    Descriptor d;
    if (!(m->switching || m->pic_offset || (!vp9 && m->tl0_offset))) {
        munger_record(m, buf, len, start, vp9);
        return;
    }
    if (vp9) {
        if (!vp9_picture_id(buf + start, window(len, start, 3), &d))
            return;
    } else if (!vp8_descriptor(buf + start, window(len, start, 6), &d) || d.pic < 0) {
        return;
    }
    int mod = d.long_id ? 0x8000 : 0x80;
    Py_ssize_t at_tl0 = d.tl0_off ? start + d.tl0_off : 0;
    if (m->switching) {
        m->switching = 0;
        m->pic_offset = m->last_pic < 0 ? 0 : pymod(m->last_pic + 1 - d.pic, mod);
        if (!vp9) {
            m->tl0_offset = 0;
            if (at_tl0 && m->last_tl0 >= 0)
                m->tl0_offset = (m->last_tl0 + 1 - buf[at_tl0]) & 0xFF;
        }
    }
    munger_shift(m, buf, start, &d);
    munger_record(m, buf, len, start, vp9);
}

static void munger_apply(MungerObject *m, uint8_t *buf, Py_ssize_t len, Py_ssize_t start, int vp9) {
    Descriptor d;
    Py_ssize_t n = window(len, start, 6);
    if (vp9 ? vp9_picture_id(buf + start, n, &d) : vp8_descriptor(buf + start, n, &d))
        munger_shift(m, buf, start, &d);
}

static int Munger_init(MungerObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "", kwlist))
        return -1;
    self->pic_offset = self->tl0_offset = 0;
    self->switching = 0;
    self->last_pic = self->last_tl0 = -1;
    return 0;
}

static PyObject *Munger_switch(MungerObject *self, PyObject *Py_UNUSED(ignored)) {
    self->switching = 1;
    Py_RETURN_NONE;
}

/* (buf, start[, vp9]) with buf a writable buffer and 0 <= start. */
static PyObject *munger_call(MungerObject *self, PyObject *args, PyObject *kwds, int mode) {
    static char *kwlist[] = {"buf", "payload_start", "vp9", NULL};
    Py_buffer view;
    Py_ssize_t start;
    int vp9 = mode == 2;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, mode == 0 ? "w*np" : "w*n|$p", kwlist, &view,
                                     &start, &vp9))
        return NULL;
    if (start < 0 || start > view.len) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "payload start outside the packet");
        return NULL;
    }
    if (mode == 0)
        munger_apply(self, view.buf, view.len, start, vp9);
    else
        munger_rewrite(self, view.buf, view.len, start, vp9);
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

static PyObject *Munger_apply(MungerObject *self, PyObject *args, PyObject *kwds) {
    return munger_call(self, args, kwds, 0);
}

static PyObject *Munger_rewrite_vp8(MungerObject *self, PyObject *args, PyObject *kwds) {
    return munger_call(self, args, kwds, 1);
}

static PyObject *Munger_rewrite_vp9(MungerObject *self, PyObject *args, PyObject *kwds) {
    return munger_call(self, args, kwds, 2);
}

static PyMethodDef Munger_methods[] = {
    {"switch", (PyCFunction)Munger_switch, METH_NOARGS,
     "The next packet starts a new source: re-base its IDs after the last ones sent."},
    {"rewrite_vp8", (PyCFunction)(void (*)(void))Munger_rewrite_vp8, METH_VARARGS | METH_KEYWORDS, "rewrite_vp8(buf, start)"},
    {"rewrite_vp9", (PyCFunction)(void (*)(void))Munger_rewrite_vp9, METH_VARARGS | METH_KEYWORDS, "rewrite_vp9(buf, start)"},
    {"apply", (PyCFunction)(void (*)(void))Munger_apply, METH_VARARGS | METH_KEYWORDS,
     "apply(buf, start, vp9): shift IDs by the current offsets, moving no state (retransmissions)."},
    {NULL}};

static PyTypeObject MungerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "confer.sfu._fanout.Munger",
    .tp_doc = "Keeps VP8/VP9 picture IDs (and VP8 TL0PICIDX) continuous across source switches.",
    .tp_basicsize = sizeof(MungerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Munger_init,
    .tp_methods = Munger_methods,
};

/* ------------------------------------------------------------------------------- Route */

typedef struct {
    PyObject_HEAD
    srtp_fn protect;
    void *srtp;
    PyObject *srtp_owner; /* keeps the libsrtp session alive */
    int fd;               /* our own duplicate, closed by route_close_fd */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    long long packets_sent, bytes_sent;
} RouteObject;

static int route_ready(RouteObject *r) { return r->protect != NULL && r->fd >= 0; }

static void route_close_fd(RouteObject *r) {
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
}

/* tp_new: fd -1 before __init__ runs, so that a dealloc never closes fd 0. */
static PyObject *Route_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    RouteObject *self = (RouteObject *)type->tp_alloc(type, 0);
    if (self != NULL)
        self->fd = -1;
    return (PyObject *)self;
}

static int Route_init(RouteObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "", kwlist))
        return -1;
    self->protect = NULL;
    self->srtp = NULL;
    route_close_fd(self);
    Py_CLEAR(self->srtp_owner);
    return 0;
}

static void Route_dealloc(RouteObject *self) {
    route_close_fd(self);
    Py_CLEAR(self->srtp_owner);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Route_set_srtp(RouteObject *self, PyObject *args) {
    PyObject *owner;
    unsigned long long func, session;
    if (!PyArg_ParseTuple(args, "OKK", &owner, &func, &session))
        return NULL;
    if (!func || !session) {
        PyErr_SetString(PyExc_ValueError, "null srtp_protect or srtp_t");
        return NULL;
    }
    Py_INCREF(owner);
    Py_XSETREF(self->srtp_owner, owner);
    self->protect = (srtp_fn)(uintptr_t)func;
    self->srtp = (void *)(uintptr_t)session;
    Py_RETURN_NONE;
}

static PyObject *Route_set_socket(RouteObject *self, PyObject *args) {
    int fd, port;
    const char *host;
    if (!PyArg_ParseTuple(args, "isi", &fd, &host, &port))
        return NULL;
    if (fd < 0 || port <= 0 || port > 65535) {
        PyErr_SetString(PyExc_ValueError, "invalid socket or port");
        return NULL;
    }
    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof addr);
    socklen_t len;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&addr;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        len = sizeof *v4;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        len = sizeof *v6;
    } else {
        PyErr_Format(PyExc_ValueError, "not an IP address: %s", host);
        return NULL;
    }
    int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (own < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    route_close_fd(self);
    self->fd = own;
    self->addr = addr;
    self->addrlen = len;
    Py_RETURN_NONE;
}

static PyObject *Route_clear(RouteObject *self, PyObject *Py_UNUSED(ignored)) {
    self->protect = NULL;
    self->srtp = NULL;
    route_close_fd(self);
    Py_CLEAR(self->srtp_owner);
    Py_RETURN_NONE;
}

/* SRTP-protect `n` bytes already in `buf` (room for the trailer after them) and send. */
static int route_send_buf(RouteObject *r, uint8_t *buf, int n) {
    if (!route_ready(r))
        return 0;
    int len = n;
    if (r->protect(r->srtp, buf, &len) != 0)
        return 0;
    if (sendto(r->fd, buf, (size_t)len, 0, (struct sockaddr *)&r->addr, r->addrlen) < 0)
        return 0; /* a full socket buffer drops like the network would; NACK repairs */
    r->packets_sent++;
    r->bytes_sent += len;
    return 1;
}

static PyObject *Route_send(RouteObject *self, PyObject *arg) {
    Py_buffer view;
    uint8_t buf[MAX_PACKET + SRTP_TRAILER];
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    int ok = 0;
    if (view.len >= 12 && view.len <= MAX_PACKET) {
        memcpy(buf, view.buf, view.len);
        ok = route_send_buf(self, buf, (int)view.len);
    }
    PyBuffer_Release(&view);
    return PyBool_FromLong(ok);
}

static PyObject *Route_send_raw(RouteObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    int ok = self->fd >= 0 && sendto(self->fd, view.buf, (size_t)view.len, 0,
                                     (struct sockaddr *)&self->addr, self->addrlen) >= 0;
    PyBuffer_Release(&view);
    return PyBool_FromLong(ok);
}

static PyObject *Route_get_ready(RouteObject *self, void *c) {
    return PyBool_FromLong(route_ready(self));
}

static PyMethodDef Route_methods[] = {
    {"set_srtp", (PyCFunction)Route_set_srtp, METH_VARARGS,
     "set_srtp(owner, srtp_protect address, srtp_t address); owner keeps the session alive."},
    {"set_socket", (PyCFunction)Route_set_socket, METH_VARARGS,
     "set_socket(fd, remote host, remote port): sends go through a duplicate of fd."},
    {"clear", (PyCFunction)Route_clear, METH_NOARGS,
     "Forget session and socket (closing the duplicate fd): sends fail."},
    {"send", (PyCFunction)Route_send, METH_O, "send(rtp) -> bool: SRTP-protect and send."},
    {"send_raw", (PyCFunction)Route_send_raw, METH_O,
     "send_raw(datagram) -> bool: send an already protected datagram (SRTCP)."},
    {NULL}};

static PyGetSetDef Route_getset[] = {
    {"ready", (getter)Route_get_ready, NULL, "session and socket are set", NULL},
    {NULL}};

static PyMemberDef Route_members[] = {
    {"packets_sent", T_LONGLONG, offsetof(RouteObject, packets_sent), READONLY, NULL},
    {"bytes_sent", T_LONGLONG, offsetof(RouteObject, bytes_sent), READONLY, NULL},
    {NULL}};

static PyTypeObject RouteType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "confer.sfu._fanout.Route",
    .tp_doc = "One transport's way out: libsrtp protection and a UDP socket to the peer.",
    .tp_basicsize = sizeof(RouteObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Route_new,
    .tp_init = (initproc)Route_init,
    .tp_dealloc = (destructor)Route_dealloc,
    .tp_methods = Route_methods,
    .tp_getset = Route_getset,
    .tp_members = Route_members,
};

/* ------------------------------------------------------------------------------ Packet */

typedef struct {
    int id, off, len; /* value offset and length */
} Ext;

typedef struct {
    const uint8_t *data;
    Py_ssize_t n;
    int marker, seq;
    uint32_t ts;
    int two_byte, next;
    int payload_start, payload_end;
    Ext ext[MAX_EXT];
} Packet;

/* Validate like rtp.parse + rtp.extensions; -1 with ValueError set when malformed. */
static int parse_packet(Packet *p, const uint8_t *d, Py_ssize_t n) {
    const char *err = NULL;
    p->data = d;
    p->n = n;
    p->next = 0;
    p->two_byte = 0;
    if (n < 12)
        err = "RTP packet shorter than its fixed header";
    else if (n > 0xFFFF) /* keeps every offset below within an int */
        err = "RTP packet longer than a UDP datagram";
    else if (d[0] >> 6 != 2)
        err = "RTP version is not 2";
    if (err)
        goto fail;
    Py_ssize_t off = 12 + 4 * (d[0] & 0x0F);
    if (off > n) {
        err = "RTP CSRC list overruns the packet";
        goto fail;
    }
    if (d[0] & 0x10) {
        if (off + 4 > n) {
            err = "RTP extension header overruns the packet";
            goto fail;
        }
        int profile = (d[off] << 8) | d[off + 1];
        Py_ssize_t start = off + 4, end = start + 4 * ((d[off + 2] << 8) | d[off + 3]);
        if (end > n) {
            err = "RTP extension block overruns the packet";
            goto fail;
        }
        Py_ssize_t pos = start;
        if (profile == ONE_BYTE_PROFILE) {
            while (pos < end) {
                uint8_t b = d[pos];
                if (b == 0) {
                    pos++;
                    continue;
                }
                int id = b >> 4, len = (b & 0x0F) + 1;
                if (id == 15)
                    break;
                if (pos + 1 + len > end) {
                    err = "RTP one-byte extension overruns its block";
                    goto fail;
                }
                if (p->next == MAX_EXT) {
                    err = "too many RTP header extensions";
                    goto fail;
                }
                p->ext[p->next++] = (Ext){id, (int)pos + 1, len};
                pos += 1 + len;
            }
        } else if ((profile & 0xFFF0) == 0x1000) {
            p->two_byte = 1;
            while (pos < end) {
                int id = d[pos];
                if (id == 0) {
                    pos++;
                    continue;
                }
                if (pos + 2 > end) {
                    err = "RTP two-byte extension header overruns its block";
                    goto fail;
                }
                int len = d[pos + 1];
                if (pos + 2 + len > end) {
                    err = "RTP two-byte extension overruns its block";
                    goto fail;
                }
                if (p->next == MAX_EXT) {
                    err = "too many RTP header extensions";
                    goto fail;
                }
                p->ext[p->next++] = (Ext){id, (int)pos + 2, len};
                pos += 2 + len;
            }
        }
        off = end;
    }
    Py_ssize_t pend = n;
    if (d[0] & 0x20) {
        int pad = d[n - 1];
        if (pad == 0 || off + pad > n) {
            err = "RTP padding length is invalid";
            goto fail;
        }
        pend = n - pad;
    }
    p->payload_start = (int)off;
    p->payload_end = (int)pend;
    p->marker = d[1] & 0x80;
    p->seq = (d[2] << 8) | d[3];
    p->ts = ((uint32_t)d[4] << 24) | ((uint32_t)d[5] << 16) | ((uint32_t)d[6] << 8) | d[7];
    return 0;
fail:
    PyErr_SetString(PyExc_ValueError, err);
    return -1;
}

/* -------------------------------------------------------------------------------- Sink */

enum { CODEC_OTHER = 0, CODEC_VP8 = 1, CODEC_VP9 = 2 };

typedef struct {
    PyObject_HEAD
    PyObject *current, *target; /* Layer objects, compared by identity */
    PyObject *seqmap, *munger;  /* SeqMap, Munger */
    PyObject *route;            /* Route, or None to go through `sender` */
    PyObject *sender;           /* callable(bytes) -> bool, used when route is None */
    char active, paused;
    int pt, codec;
    unsigned int ssrc;
    long long packets, octets;
    int abs_id;
    uint8_t idmap[256];
} SinkObject;

static int Sink_traverse(SinkObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->current);
    Py_VISIT(self->target);
    Py_VISIT(self->seqmap);
    Py_VISIT(self->munger);
    Py_VISIT(self->route);
    Py_VISIT(self->sender);
    return 0;
}

static int Sink_clear(SinkObject *self) {
    Py_CLEAR(self->current);
    Py_CLEAR(self->target);
    Py_CLEAR(self->seqmap);
    Py_CLEAR(self->munger);
    Py_CLEAR(self->route);
    Py_CLEAR(self->sender);
    return 0;
}

static void Sink_dealloc(SinkObject *self) {
    PyObject_GC_UnTrack(self);
    Sink_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Rewrite `p` for this subscriber and send it: 1 sent, 0 not, -1 a Python error. */
static int sink_write(SinkObject *s, const Packet *p, int64_t source, double now) {
    if (!s->active || s->paused || p->n > MAX_PACKET)
        return 0;
    if (s->seqmap == NULL || !Py_IS_TYPE(s->seqmap, &SeqMapType)) {
        PyErr_SetString(PyExc_TypeError, "Sink.seqmap must be a SeqMap");
        return -1;
    }
    uint16_t seq;
    uint32_t ts;
    if (!seqmap_map((SeqMapObject *)s->seqmap, source, p->seq, p->ts, now, &seq, &ts))
        return 0;
    uint8_t buf[MAX_PACKET + SRTP_TRAILER];
    memcpy(buf, p->data, p->n);
    for (int i = 0; i < p->next; i++) {
        const Ext *e = &p->ext[i];
        int new_id = s->idmap[e->id];
        if (p->two_byte) {
            if (new_id)
                buf[e->off - 2] = (uint8_t)new_id;
            else
                memset(buf + e->off - 2, 0, e->len + 2);
        } else if (new_id && new_id < 15) {
            buf[e->off - 1] = (uint8_t)((new_id << 4) | (e->len - 1));
        } else {
            new_id = 0;
            memset(buf + e->off - 1, 0, e->len + 1);
        }
        if (new_id && new_id == s->abs_id && e->len == 3) {
            uint32_t v = (uint32_t)((int64_t)(now * 262144.0) & 0xFFFFFF);
            buf[e->off] = v >> 16;
            buf[e->off + 1] = (v >> 8) & 0xFF;
            buf[e->off + 2] = v & 0xFF;
        }
    }
    buf[1] = (uint8_t)((p->marker ? 0x80 : 0) | (s->pt & 0x7F));
    buf[2] = seq >> 8;
    buf[3] = seq & 0xFF;
    buf[4] = ts >> 24;
    buf[5] = (ts >> 16) & 0xFF;
    buf[6] = (ts >> 8) & 0xFF;
    buf[7] = ts & 0xFF;
    buf[8] = s->ssrc >> 24;
    buf[9] = (s->ssrc >> 16) & 0xFF;
    buf[10] = (s->ssrc >> 8) & 0xFF;
    buf[11] = s->ssrc & 0xFF;
    if (s->codec != CODEC_OTHER && p->payload_start < p->payload_end && s->munger != NULL &&
        Py_IS_TYPE(s->munger, &MungerType))
        munger_rewrite((MungerObject *)s->munger, buf, p->n, p->payload_start,
                       s->codec == CODEC_VP9);
    int ok;
    if (s->route != NULL && Py_IS_TYPE(s->route, &RouteType)) {
        ok = route_send_buf((RouteObject *)s->route, buf, (int)p->n);
    } else if (s->sender != NULL && s->sender != Py_None) {
        PyObject *res = PyObject_CallFunction(s->sender, "y#", (const char *)buf, p->n);
        if (res == NULL)
            return -1;
        ok = PyObject_IsTrue(res);
        Py_DECREF(res);
        if (ok < 0)
            return -1;
    } else {
        ok = 0;
    }
    if (!ok)
        return 0;
    s->packets++;
    s->octets += p->payload_end - p->payload_start;
    return 1;
}

static PyObject *Sink_set_ids(SinkObject *self, PyObject *args) {
    PyObject *mapping;
    int abs_id;
    if (!PyArg_ParseTuple(args, "O!i", &PyDict_Type, &mapping, &abs_id))
        return NULL;
    uint8_t table[256] = {0};
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (PyDict_Next(mapping, &pos, &k, &v)) {
        long from = PyLong_AsLong(k), to = PyLong_AsLong(v);
        if (PyErr_Occurred())
            return NULL;
        if (from < 1 || from > 255 || to < 0 || to > 255) {
            PyErr_SetString(PyExc_ValueError, "extension ids must be 1-255");
            return NULL;
        }
        table[from] = (uint8_t)to;
    }
    memcpy(self->idmap, table, sizeof table);
    self->abs_id = abs_id;
    Py_RETURN_NONE;
}

static PyObject *Sink_send_packet(SinkObject *self, PyObject *args) {
    long long source;
    Py_buffer view;
    double now;
    if (!PyArg_ParseTuple(args, "Ly*d", &source, &view, &now))
        return NULL;
    if (!finite_time(now)) {
        PyBuffer_Release(&view);
        return NULL;
    }
    Packet *p = PyMem_Malloc(sizeof(Packet));
    int r = -1;
    if (p == NULL)
        PyErr_NoMemory();
    else if (parse_packet(p, view.buf, view.len) == 0)
        r = sink_write(self, p, source, now);
    PyMem_Free(p);
    PyBuffer_Release(&view);
    if (r < 0)
        return NULL;
    return PyBool_FromLong(r);
}

static PyMethodDef Sink_methods[] = {
    {"set_ids", (PyCFunction)Sink_set_ids, METH_VARARGS,
     "set_ids({publisher ext id: subscriber ext id}, abs-send-time id): unmapped ids are "
     "dropped (become padding)."},
    {"send_packet", (PyCFunction)Sink_send_packet, METH_VARARGS,
     "send_packet(source, rtp, now) -> bool: rewrite one packet for this subscriber and send it."},
    {NULL}};

static PyMemberDef Sink_members[] = {
    {"current", T_OBJECT, offsetof(SinkObject, current), 0, "the Layer forwarded"},
    {"target", T_OBJECT, offsetof(SinkObject, target), 0, "the Layer wanted"},
    {"seqmap", T_OBJECT, offsetof(SinkObject, seqmap), 0, "a SeqMap"},
    {"munger", T_OBJECT, offsetof(SinkObject, munger), 0, "a Munger"},
    {"route", T_OBJECT, offsetof(SinkObject, route), 0, "a Route, or None"},
    {"sender", T_OBJECT, offsetof(SinkObject, sender), 0, "callable(bytes) when route is None"},
    {"active", T_BOOL, offsetof(SinkObject, active), 0, "negotiated and connected"},
    {"paused", T_BOOL, offsetof(SinkObject, paused), 0, "the subscriber renders no tile"},
    {"pt", T_INT, offsetof(SinkObject, pt), 0, "outgoing payload type"},
    {"codec_id", T_INT, offsetof(SinkObject, codec), 0, "0, 1 VP8 or 2 VP9 (picture ids)"},
    {"ssrc", T_UINT, offsetof(SinkObject, ssrc), 0, "outgoing SSRC"},
    {"packets", T_LONGLONG, offsetof(SinkObject, packets), 0, "packets sent"},
    {"octets", T_LONGLONG, offsetof(SinkObject, octets), 0, "payload octets sent"},
    {NULL}};

static PyTypeObject SinkType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "confer.sfu._fanout.Sink",
    .tp_doc = "Per-subscriber forwarding state (the base of tracks.DownTrack).",
    .tp_basicsize = sizeof(SinkObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_traverse = (traverseproc)Sink_traverse,
    .tp_clear = (inquiry)Sink_clear,
    .tp_dealloc = (destructor)Sink_dealloc,
    .tp_methods = Sink_methods,
    .tp_members = Sink_members,
};

/* ----------------------------------------------------------------------------- forward */

static PyObject *fanout_forward(PyObject *mod, PyObject *args) {
    PyObject *sinks, *layer;
    long long source;
    Py_buffer view;
    double now;
    if (!PyArg_ParseTuple(args, "O!OLy*d", &PyList_Type, &sinks, &layer, &source, &view, &now))
        return NULL;
    PyObject *waiting = NULL, *result = NULL;
    long sent = 0;
    Packet *p = PyMem_Malloc(sizeof(Packet));
    if (p == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (!finite_time(now))
        goto done;
    if (parse_packet(p, view.buf, view.len) < 0)
        goto done;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(sinks); i++) {
        PyObject *item = PyList_GET_ITEM(sinks, i);
        if (!PyObject_TypeCheck(item, &SinkType)) {
            PyErr_SetString(PyExc_TypeError, "forward() takes a list of Sink");
            goto done;
        }
        SinkObject *s = (SinkObject *)item;
        if (s->current != layer) {
            if (s->target == layer && s->active) {
                if (waiting == NULL && (waiting = PyList_New(0)) == NULL)
                    goto done;
                if (PyList_Append(waiting, item) < 0)
                    goto done;
            }
            continue;
        }
        Py_INCREF(item); /* a sender callback could change the list */
        int r = sink_write(s, p, source, now);
        Py_DECREF(item);
        if (r < 0)
            goto done;
        sent += r;
    }
    result = Py_BuildValue("(lO)", sent, waiting ? waiting : Py_None);
done:
    Py_XDECREF(waiting);
    PyMem_Free(p);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef module_methods[] = {
    {"forward", fanout_forward, METH_VARARGS,
     "forward(sinks, layer, source, rtp, now) -> (sent, waiting): send the packet to every "
     "sink whose current layer is `layer`; `waiting` lists the active sinks that want this "
     "layer but have not switched to it (they need a keyframe), or is None."},
    {NULL}};

static struct PyModuleDef fanout_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_fanout",
    .m_doc = "The SFU's per-subscriber forwarding (rewrite, SRTP, send) in C.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__fanout(void) {
    PyTypeObject *types[] = {&SeqMapType, &MungerType, &RouteType, &SinkType};
    const char *names[] = {"SeqMap", "Munger", "Route", "Sink"};
    for (int i = 0; i < 4; i++)
        if (PyType_Ready(types[i]) < 0)
            return NULL;
    PyObject *m = PyModule_Create(&fanout_module);
    if (m == NULL)
        return NULL;
    for (int i = 0; i < 4; i++) {
        Py_INCREF(types[i]);
        if (PyModule_AddObject(m, names[i], (PyObject *)types[i]) < 0) {
            Py_DECREF(types[i]);
            Py_DECREF(m);
            return NULL;
        }
    }
    if (PyModule_AddIntConstant(m, "MAX_PACKET", MAX_PACKET) < 0 ||
        PyModule_AddIntConstant(m, "MAX_SEGMENTS", MAX_SEGMENTS) < 0 ||
        PyModule_AddIntConstant(m, "SRTP_TRAILER", SRTP_TRAILER) < 0 ||
        PyModule_AddIntConstant(m, "VP8", CODEC_VP8) < 0 ||
        PyModule_AddIntConstant(m, "VP9", CODEC_VP9) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
