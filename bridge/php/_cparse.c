/* bridge.php._cparse: PHP's serialize() grammar and the three session formats, in C.
 *
 * The accelerated twin of bridge/php/parse.py (the pure-Python parser, which
 * stays the reference): same grammar, same limits, same slot numbering for
 * r:/R:, same values, and the same SessionDecodeError messages, offsets
 * included. tests/test_phpsession*.py run against both and
 * fuzz/fuzz_phpsession.py checks that they agree on every input.
 *
 * Safety: every read is bounded by `end` (the data's length, or the end of the
 * C: payload being replayed); lengths are saturated at 2**58, far above any
 * input, so no arithmetic overflows; nesting is kept on a heap-allocated frame
 * stack (no C recursion at all, C: payloads included) and bounded by
 * max_depth; every reference taken is released on every path.
 *
 * Python API (bridge.php uses it; nothing else should):
 *   configure(SessionDecodeError, PHPObject, PHPEnum, PHPCustom, plain_props)
 *   decode(data: bytes, fmt: str, max_depth: int) -> dict | value
 *       fmt: "php", "php_binary", "php_serialize", or "value" (one
 *       serialize() value, trailing bytes ignored, like unserialize()).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

typedef unsigned char uchar;

/* Set by configure(): what values are built with and errors raised as. */
static PyObject *DecodeError, *ObjectType, *EnumType, *CustomType, *PlainProps;
static PyObject *PropsName; /* "props" */

#define BIG ((Py_ssize_t)1 << 58) /* digit runs saturate here: beyond any input */
#define MAX_DIGITS 20             /* PHP writes at most 20 digits in a length */

/* One open container, or one C: payload being replayed for its slots. */
typedef struct {
    PyObject *cur;    /* container: the dict being filled; NULL marks a payload frame */
    PyObject *obj;    /* the PHPObject owning cur, or NULL for an array */
    PyObject *name;   /* the object's class name, for plain_props() */
    Py_ssize_t left;  /* elements still expected */
    Py_ssize_t count; /* elements declared */
    PyObject *custom; /* payload frame: the PHPCustom */
    PyObject *key;    /* payload frame: its key in the enclosing container, or NULL */
    Py_ssize_t end;   /* payload frame: the end to restore */
    Py_ssize_t mark;  /* payload frame: slots to keep when the payload is not one value */
    Py_ssize_t stop;  /* payload frame: offset of the payload's closing '}' */
} Frame;

typedef struct {
    const uchar *d;
    Py_ssize_t end; /* bytes readable: len(data), or the end of a replayed payload */
    Py_ssize_t max_depth;
    PyObject **slots; /* PHP's slot table: slots[n - 1] is slot n */
    Py_ssize_t nslots, slots_cap;
    Frame *frames;
    Py_ssize_t nframes, frames_cap, payloads;
    const char *what; /* a parse error (no Python exception set), or NULL */
    Py_ssize_t where; /* its offset, -1 for none */
    int too_deep;     /* the error is the depth cap (its message names max_depth) */
} Parser;

/* Functions returning int: 0 success, PARSE (p->what set), PY (exception set). */
enum { OK = 0, PARSE = -1, PY = -2 };

static int
fail(Parser *p, Py_ssize_t pos, const char *what)
{
    p->where = pos;
    p->what = what;
    return PARSE;
}

/* -- lexing ------------------------------------------------------------------ */

/* Bytes of a class name: 1 anywhere ([A-Za-z0-9_\x80-\xff]), 2 after the first ('\\'). */
static uchar name_byte[256];

static void
init_tables(void)
{
    for (int c = 0; c < 256; c++) {
        int word = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
                   (c >= 'a' && c <= 'z') || c == '_' || c >= 0x80;
        name_byte[c] = word ? 1 : (c == '\\' ? 2 : 0);
    }
}

static int
class_name_ok(const uchar *s, Py_ssize_t n)
{
    if (n < 1 || name_byte[s[0]] != 1)
        return 0;
    for (Py_ssize_t i = 1; i < n; i++)
        if (!name_byte[s[i]])
            return 0;
    return 1;
}

static inline int
is_digit(uchar c)
{
    return (unsigned)(c - '0') < 10;
}

/* [0-9]* at i: how many digits; *value their number, saturated at BIG. */
static inline Py_ssize_t
scan_digits(const uchar *d, Py_ssize_t i, Py_ssize_t end, Py_ssize_t *value)
{
    Py_ssize_t v = 0, start = i;
    for (; i < end && is_digit(d[i]); i++)
        if (v < BIG)
            v = v * 10 + (d[i] - '0');
    *value = v;
    return i - start;
}

/* [+-]?[0-9]+ at i: the offset after it, or -1. */
static inline Py_ssize_t
scan_signed(const uchar *d, Py_ssize_t i, Py_ssize_t end)
{
    Py_ssize_t v;
    if (i < end && (d[i] == '+' || d[i] == '-'))
        i++;
    Py_ssize_t n = scan_digits(d, i, end, &v);
    return n ? i + n : -1;
}

/* "<op>:" [0-9]+ <tail> at pos (op already seen): the offset after tail, or -1. */
static inline Py_ssize_t
uint_token(const uchar *d, Py_ssize_t pos, Py_ssize_t end, const char *tail,
           Py_ssize_t *value, Py_ssize_t *ndigits)
{
    Py_ssize_t i = pos + 1;
    if (i >= end || d[i] != ':')
        return -1;
    i++;
    *ndigits = scan_digits(d, i, end, value);
    if (!*ndigits)
        return -1;
    for (i += *ndigits; *tail; tail++, i++)
        if (i >= end || d[i] != (uchar)*tail)
            return -1;
    return i;
}

/* The int64 value of [+-]?[0-9]+ in d[s:e]; PARSE when it does not fit (PHP clamps). */
static int
int64_value(const uchar *d, Py_ssize_t s, Py_ssize_t e, long long *out)
{
    int neg = d[s] == '-';
    unsigned long long v = 0;
    if (d[s] == '+' || d[s] == '-')
        s++;
    while (s < e && d[s] == '0')
        s++;
    if (e - s > 19)
        return PARSE;
    for (; s < e; s++)
        v = v * 10 + (unsigned)(d[s] - '0');
    if (v > (neg ? (1ULL << 63) : (1ULL << 63) - 1))
        return PARSE;
    *out = (neg && v) ? -(long long)(v - 1) - 1 : (long long)v;
    return OK;
}

/* `":" [+-]?[0-9]+ ":{` after an O:/C: class name: the offset after '{', or -1. */
static Py_ssize_t
object_tail(const uchar *d, Py_ssize_t i, Py_ssize_t end, Py_ssize_t *s, Py_ssize_t *e)
{
    if (end - i < 2 || d[i] != '"' || d[i + 1] != ':')
        return -1;
    *s = i + 2;
    *e = scan_signed(d, *s, end);
    if (*e < 0 || end - *e < 2 || d[*e] != ':' || d[*e + 1] != '{')
        return -1;
    return *e + 2;
}

/* "d:" then NAN | -?INF | [+-]?([0-9]+(.[0-9]*)? | .[0-9]+)([eE][+-]?[0-9]+)? then ";".
 * Returns the offset after ';', or -1; the number's text is d[*s:*e]. */
static Py_ssize_t
float_token(const uchar *d, Py_ssize_t pos, Py_ssize_t end, Py_ssize_t *s, Py_ssize_t *e)
{
    Py_ssize_t i = pos + 1, v, whole, frac, exp;
    if (i >= end || d[i] != ':')
        return -1;
    *s = ++i;
    if (end - i >= 3 && (!memcmp(d + i, "NAN", 3) || !memcmp(d + i, "INF", 3))) {
        i += 3;
    }
    else if (end - i >= 4 && !memcmp(d + i, "-INF", 4)) {
        i += 4;
    }
    else {
        if (i < end && (d[i] == '+' || d[i] == '-'))
            i++;
        whole = scan_digits(d, i, end, &v);
        i += whole;
        if (i < end && d[i] == '.') {
            frac = scan_digits(d, i + 1, end, &v);
            if (!whole && !frac)
                return -1;
            i += 1 + frac;
        }
        else if (!whole) {
            return -1;
        }
        if (i < end && (d[i] == 'e' || d[i] == 'E')) {
            Py_ssize_t j = i + 1;
            if (j < end && (d[j] == '+' || d[j] == '-'))
                j++;
            exp = scan_digits(d, j, end, &v);
            if (!exp)
                return -1; /* the optional exponent is absent, and 'e' is not ';' */
            i = j + exp;
        }
    }
    *e = i;
    return (i < end && d[i] == ';') ? i + 1 : -1;
}

/* Python's float() of the validated text d[s:e] (the same correctly rounded strtod). */
static PyObject *
float_value(const uchar *d, Py_ssize_t s, Py_ssize_t e)
{
    char small[64], *buf = small;
    Py_ssize_t n = e - s;
    if (n >= (Py_ssize_t)sizeof small && !(buf = PyMem_Malloc(n + 1)))
        return PyErr_NoMemory();
    memcpy(buf, d + s, n);
    buf[n] = '\0';
    double v = PyOS_string_to_double(buf, NULL, NULL);
    if (buf != small)
        PyMem_Free(buf);
    if (v == -1.0 && PyErr_Occurred())
        return NULL;
    return PyFloat_FromDouble(v);
}

static inline PyObject *
text(const uchar *s, Py_ssize_t n)
{
    return PyUnicode_DecodeUTF8((const char *)s, n, "surrogateescape");
}

/* A string array key as PHP stores it: canonical decimal int64 strings become ints. */
static PyObject *
array_key(const uchar *s, Py_ssize_t n)
{
    int neg = n > 0 && s[0] == '-';
    const uchar *dg = s + neg;
    Py_ssize_t nd = n - neg, i;
    unsigned long long v = 0;
    if (nd >= 1 && nd <= 19 && (dg[0] != '0' || n == 1)) {
        for (i = 0; i < nd && is_digit(dg[i]); i++)
            v = v * 10 + (unsigned)(dg[i] - '0');
        if (i == nd && v <= (neg ? (1ULL << 63) : (1ULL << 63) - 1))
            return PyLong_FromLongLong((neg && v) ? -(long long)(v - 1) - 1 : (long long)v);
    }
    return text(s, n);
}

static inline int
hex_value(uchar c)
{
    if (is_digit(c))
        return c - '0';
    c |= 0x20;
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* The body of `S:len:"..";` from i (after the quote), where \xx is one byte and len
 * (need) counts decoded bytes. On OK, *out (PyMem) holds *outlen bytes, *after is the
 * offset after `";`. Errors name pos (the token) except a bad escape (its offset). */
static int
escaped(Parser *p, Py_ssize_t pos, Py_ssize_t i, Py_ssize_t need, uchar **out,
        Py_ssize_t *outlen, Py_ssize_t *after)
{
    const uchar *d = p->d;
    Py_ssize_t end = p->end, n = 0, cap = need < end - i ? need : end - i;
    uchar *buf = PyMem_Malloc(cap > 0 ? cap : 1);
    if (!buf) {
        PyErr_NoMemory();
        return PY;
    }
    while (need) { /* invariant: n + need == the declared length; n <= bytes read */
        Py_ssize_t limit = i + need < end ? i + need : end;
        const uchar *slash = memchr(d + i, '\\', limit - i);
        if (!slash) {
            if (i + need > end) {
                PyMem_Free(buf);
                return fail(p, pos, "escaped string longer than the data");
            }
            memcpy(buf + n, d + i, need);
            n += need;
            i += need;
            break;
        }
        Py_ssize_t j = slash - d;
        memcpy(buf + n, d + i, j - i);
        n += j - i;
        need -= j - i;
        if (end - j < 3 || hex_value(d[j + 1]) < 0 || hex_value(d[j + 2]) < 0) {
            PyMem_Free(buf);
            return fail(p, j, "bad escape in S: string");
        }
        buf[n++] = (uchar)(hex_value(d[j + 1]) * 16 + hex_value(d[j + 2]));
        need--;
        i = j + 3;
    }
    if (i + 2 > end || d[i] != '"' || d[i + 1] != ';') {
        PyMem_Free(buf);
        return fail(p, pos, "escaped string length does not match");
    }
    *out = buf;
    *outlen = n;
    *after = i + 2;
    return OK;
}

/* -- slots and frames -------------------------------------------------------- */

static int
push_slot(Parser *p, PyObject *v)
{
    if (p->nslots == p->slots_cap) {
        Py_ssize_t cap = p->slots_cap ? 2 * p->slots_cap : 256;
        PyObject **slots = PyMem_Realloc(p->slots, cap * sizeof(PyObject *));
        if (!slots) {
            PyErr_NoMemory();
            return PY;
        }
        p->slots = slots;
        p->slots_cap = cap;
    }
    Py_INCREF(v);
    p->slots[p->nslots++] = v;
    return OK;
}

static void
truncate_slots(Parser *p, Py_ssize_t mark)
{
    while (p->nslots > mark)
        Py_DECREF(p->slots[--p->nslots]);
}

/* A new zeroed frame on top (pointers into frames are invalid after this). */
static Frame *
push_frame(Parser *p)
{
    if (p->nframes == p->frames_cap) {
        Py_ssize_t cap = p->frames_cap ? 2 * p->frames_cap : 32;
        Frame *frames = PyMem_Realloc(p->frames, cap * sizeof(Frame));
        if (!frames) {
            PyErr_NoMemory();
            return NULL;
        }
        p->frames = frames;
        p->frames_cap = cap;
    }
    Frame *f = &p->frames[p->nframes++];
    memset(f, 0, sizeof *f);
    return f;
}

static void
pop_frame(Parser *p)
{
    Frame *f = &p->frames[--p->nframes];
    if (!f->cur)
        p->payloads--;
    Py_XDECREF(f->cur);
    Py_XDECREF(f->obj);
    Py_XDECREF(f->name);
    Py_XDECREF(f->custom);
    Py_XDECREF(f->key);
}

static inline Frame *
top(Parser *p)
{
    return p->nframes ? &p->frames[p->nframes - 1] : NULL;
}

/* Refuse a container of count elements opening at pos at the current depth. */
static int
check_open(Parser *p, long long count, Py_ssize_t pos)
{
    if (count > (p->end - pos) >> 1) /* PHP: each element takes at least 2 bytes */
        return fail(p, pos, "element count larger than the data");
    if (p->nframes >= p->max_depth) {
        p->too_deep = 1;
        return fail(p, pos, "nesting deeper than max_depth");
    }
    return OK;
}

/* Open a container: slot, entry in the enclosing container (consuming *key), frame.
 * Steals dict, obj and name. */
static int
open_container(Parser *p, PyObject *dict, PyObject *obj, PyObject *name, Py_ssize_t count,
               PyObject **key)
{
    PyObject *shown = obj ? obj : dict;
    Frame *f = top(p);
    if (push_slot(p, shown) < 0)
        goto error;
    if (f && f->cur) {
        if (PyDict_SetItem(f->cur, *key, shown) < 0)
            goto error;
        Py_CLEAR(*key);
    }
    if (!(f = push_frame(p)))
        goto error;
    f->cur = dict;
    f->obj = obj;
    f->name = name;
    f->left = f->count = count;
    return OK;
error:
    Py_DECREF(dict);
    Py_XDECREF(obj);
    Py_XDECREF(name);
    return PY;
}

/* The finished container of the top frame (new reference); objects get their props. */
static PyObject *
close_container(Frame *f)
{
    if (!f->obj) {
        Py_INCREF(f->cur);
        return f->cur;
    }
    PyObject *props = PyObject_CallFunctionObjArgs(PlainProps, f->name, f->cur, NULL);
    if (!props)
        return NULL;
    int rc = PyObject_SetAttr(f->obj, PropsName, props);
    Py_DECREF(props);
    if (rc < 0)
        return NULL;
    Py_INCREF(f->obj);
    return f->obj;
}

/* -- tokens ------------------------------------------------------------------ */

/* What a string is read as: a value, an array key (canonical integers become ints)
 * or a property name. A token that does not match is reported as INVALID for a
 * value, BAD_KEY for a key. */
enum { AS_VALUE, AS_ARRAY_KEY, AS_PROPERTY };
static const char INVALID[] = "invalid value";
static const char BAD_KEY[] = "array key must be an int or a string";

/* The class name of the O:/C: token at pos; *stop becomes the offset after it. */
static PyObject *
class_name(Parser *p, Py_ssize_t pos, Py_ssize_t *stop)
{
    Py_ssize_t n, nd, start = uint_token(p->d, pos, p->end, ":\"", &n, &nd);
    if (start < 0)
        return fail(p, pos, INVALID), NULL;
    if (nd > MAX_DIGITS)
        return fail(p, pos, "length field too long"), NULL;
    if (start + n > p->end)
        return fail(p, pos, "class name longer than the data"), NULL;
    if (!class_name_ok(p->d + start, n))
        return fail(p, pos, "invalid class name"), NULL;
    *stop = start + n;
    return text(p->d + start, n);
}

/* The count or payload size after an O:/C: class name ending at stop. */
static int
object_count(Parser *p, Py_ssize_t stop, const char *bad, long long *count, Py_ssize_t *after)
{
    Py_ssize_t s, e;
    *after = object_tail(p->d, stop, p->end, &s, &e);
    if (*after < 0)
        return fail(p, stop, bad);
    if (int64_value(p->d, s, e, count) < 0)
        return fail(p, stop, "integer out of int64 range");
    return OK;
}

/* `O:len:"Class":count:{`: opens the object's frame; *pos becomes the offset after '{'. */
static int
open_object(Parser *p, Py_ssize_t *pos, PyObject **key)
{
    Py_ssize_t stop, after;
    long long count;
    PyObject *name = class_name(p, *pos, &stop), *raw, *props, *obj = NULL;
    if (!name)
        return p->what ? PARSE : PY;
    if (object_count(p, stop, "bad object header", &count, &after) < 0 ||
        (count < 0 && fail(p, stop, "negative property count") < 0) ||
        check_open(p, count, after) < 0) {
        Py_DECREF(name);
        return PARSE;
    }
    raw = PyDict_New();
    props = PyDict_New();
    if (raw && props)
        obj = PyObject_CallFunctionObjArgs(ObjectType, name, props, raw, NULL);
    Py_XDECREF(props);
    if (!obj) {
        Py_DECREF(name);
        Py_XDECREF(raw);
        return PY;
    }
    *pos = after;
    return open_container(p, raw, obj, name, (Py_ssize_t)count, key);
}

/* `E:len:"Class:Case";` -> PHPEnum; *pos becomes the offset after it. */
static PyObject *
enum_value(Parser *p, Py_ssize_t *pos)
{
    const uchar *d = p->d;
    Py_ssize_t n, nd, start = uint_token(d, *pos, p->end, ":\"", &n, &nd), stop;
    if (start < 0)
        return fail(p, *pos, INVALID), NULL;
    if (nd > MAX_DIGITS)
        return fail(p, *pos, "length field too long"), NULL;
    stop = start + n;
    if (stop + 2 > p->end || d[stop] != '"' || d[stop + 1] != ';')
        return fail(p, *pos, "enum length does not match"), NULL;
    const uchar *colon = memchr(d + start, ':', n);
    if (!colon || colon + 1 == d + stop || !class_name_ok(d + start, colon - (d + start)))
        return fail(p, *pos, "invalid enum name"), NULL;
    PyObject *cls = text(d + start, colon - (d + start)), *value = NULL;
    PyObject *cas = text(colon + 1, d + stop - (colon + 1));
    if (cls && cas)
        value = PyObject_CallFunctionObjArgs(EnumType, cls, cas, NULL);
    Py_XDECREF(cls);
    Py_XDECREF(cas);
    *pos = stop + 2;
    return value;
}

/* `C:len:"Class":size:{payload}` -> PHPCustom (its slot taken). *payload and *size
 * locate the payload for the caller to replay. */
static PyObject *
custom_value(Parser *p, Py_ssize_t pos, Py_ssize_t *payload, Py_ssize_t *size)
{
    Py_ssize_t stop;
    long long n;
    PyObject *name = class_name(p, pos, &stop), *bytes, *value = NULL;
    if (!name)
        return NULL;
    if (object_count(p, stop, "bad custom object header", &n, payload) < 0)
        goto done;
    if (n < 0 || n >= p->end - *payload || p->d[*payload + n] != '}') {
        fail(p, stop, "custom object payload does not match its length");
        goto done;
    }
    *size = (Py_ssize_t)n;
    if ((bytes = PyBytes_FromStringAndSize((const char *)p->d + *payload, *size))) {
        value = PyObject_CallFunctionObjArgs(CustomType, name, bytes, NULL);
        Py_DECREF(bytes);
    }
    if (value && push_slot(p, value) < 0)
        Py_CLEAR(value);
done:
    Py_DECREF(name);
    return value;
}

/* `r:n;` (must name an object) or `R:n;`: the value of slot n (new reference). */
static PyObject *
reference(Parser *p, Py_ssize_t *pos, int objects_only)
{
    Py_ssize_t n, nd, after = uint_token(p->d, *pos, p->end, ";", &n, &nd);
    if (after < 0)
        return fail(p, *pos, INVALID), NULL;
    if (nd > MAX_DIGITS)
        return fail(p, *pos, "length field too long"), NULL;
    if (n < 1 || n > p->nslots)
        return fail(p, *pos, "reference to a slot that does not exist"), NULL;
    PyObject *value = p->slots[n - 1];
    if (objects_only && !PyObject_TypeCheck(value, (PyTypeObject *)ObjectType) &&
        !PyObject_TypeCheck(value, (PyTypeObject *)EnumType) &&
        !PyObject_TypeCheck(value, (PyTypeObject *)CustomType))
        return fail(p, *pos, "r: reference to a value that is not an object"), NULL;
    *pos = after;
    Py_INCREF(value);
    return value;
}

/* `s:len:"..";` or `S:len:"..";` at *pos; *pos becomes the offset after it. */
static PyObject *
string(Parser *p, Py_ssize_t *pos, int as)
{
    const uchar *d = p->d;
    Py_ssize_t n, nd, start = uint_token(d, *pos, p->end, ":\"", &n, &nd), stop;
    uchar *buf = NULL;
    PyObject *value;
    if (start < 0)
        return fail(p, *pos, as == AS_VALUE ? INVALID : BAD_KEY), NULL;
    if (nd > MAX_DIGITS)
        return fail(p, *pos, "length field too long"), NULL;
    if (d[*pos] == 'S') {
        if (escaped(p, *pos, start, n, &buf, &n, &stop) < 0)
            return NULL;
        d = buf;
        start = 0;
    }
    else {
        stop = start + n;
        if (stop + 2 > p->end || d[stop] != '"' || d[stop + 1] != ';')
            return fail(p, *pos, as == AS_VALUE ? "string length does not match"
                                                : "string key length does not match"), NULL;
        stop += 2;
    }
    value = as == AS_ARRAY_KEY ? array_key(d + start, n) : text(d + start, n);
    PyMem_Free(buf);
    *pos = stop;
    return value;
}

/* `i:[+-]?[0-9]+;` at *pos; *pos becomes the offset after it. */
static PyObject *
integer(Parser *p, Py_ssize_t *pos, const char *mismatch)
{
    const uchar *d = p->d;
    Py_ssize_t e = -1;
    long long v;
    if (*pos + 1 < p->end && d[*pos + 1] == ':')
        e = scan_signed(d, *pos + 2, p->end);
    if (e < 0 || e >= p->end || d[e] != ';')
        return fail(p, *pos, mismatch), NULL;
    if (int64_value(d, *pos + 2, e, &v) < 0)
        return fail(p, *pos, "integer out of int64 range"), NULL;
    *pos = e + 1;
    return PyLong_FromLongLong(v);
}

/* An element key at *pos: i:, s: or S: (numeric strings become ints in arrays). */
static PyObject *
element_key(Parser *p, Py_ssize_t *pos, int in_array)
{
    uchar c = *pos < p->end ? p->d[*pos] : 0;
    if (c == 'i')
        return integer(p, pos, BAD_KEY);
    if (c == 's' || c == 'S')
        return string(p, pos, in_array ? AS_ARRAY_KEY : AS_PROPERTY);
    return fail(p, *pos, BAD_KEY), NULL;
}

/* -- the parser loop --------------------------------------------------------- */

/* The top frame is a payload frame whose one value ended at pos: undo the slots it
 * took unless it was exactly the payload, restore the end, and hand back the
 * PHPCustom and its key (new references). Returns the offset after the payload. */
static Py_ssize_t
end_payload(Parser *p, Py_ssize_t pos, int failed, PyObject **value, PyObject **key)
{
    Frame *f = top(p);
    if (failed || pos != f->stop)
        truncate_slots(p, f->mark);
    p->end = f->end;
    pos = f->stop + 1;
    *value = f->custom;
    *key = f->key;
    f->custom = f->key = NULL;
    pop_frame(p);
    return pos;
}

/* A parse error inside a replayed C: payload ends that payload only (PHP's
 * Serializable::unserialize() would see unserialize() fail): drop its frames. */
static Py_ssize_t
abandon_payload(Parser *p, PyObject **value, PyObject **key)
{
    while (top(p)->cur)
        pop_frame(p);
    p->what = NULL;
    p->too_deep = 0;
    return end_payload(p, 0, 1, value, key);
}

/* Begin replaying the payload d[start:start+size] of the PHPCustom value. */
static int
begin_payload(Parser *p, PyObject *value, PyObject **key, Py_ssize_t start, Py_ssize_t size)
{
    Frame *f = push_frame(p);
    if (!f)
        return PY;
    p->payloads++;
    f->custom = value;
    f->key = *key;
    *key = NULL;
    f->end = p->end;
    f->mark = p->nslots;
    f->stop = start + size;
    p->end = start + size;
    return OK;
}

/* What token() found: a value that took its slot, a value that takes none (R:, or C:
 * which took its slot itself), or a container or payload frame now open. */
enum { GOT_VALUE, GOT_SLOTLESS, GOT_CLOSED, OPENED, ERROR };

/* `a:count:{`: opens the array's frame; *pos becomes the offset after '{'. */
static int
open_array(Parser *p, Py_ssize_t *pos, PyObject **key)
{
    Py_ssize_t n, nd, start = uint_token(p->d, *pos, p->end, ":{", &n, &nd);
    PyObject *dict;
    if (start < 0)
        return fail(p, *pos, INVALID);
    if (nd > MAX_DIGITS)
        return fail(p, *pos, "length field too long");
    if (check_open(p, n, start) < 0)
        return PARSE;
    if (!(dict = PyDict_New()))
        return PY;
    *pos = start;
    return open_container(p, dict, NULL, NULL, n, key);
}

/* `C:...{payload}`: the PHPCustom, then its payload replayed when it may hold slots. */
static int
custom(Parser *p, Py_ssize_t *pos, PyObject **key, PyObject **value)
{
    Py_ssize_t start, size;
    if (!(*value = custom_value(p, *pos, &start, &size)))
        return ERROR;
    if (size && p->nframes + 1 < p->max_depth) {
        if (begin_payload(p, *value, key, start, size) < 0)
            return ERROR;
        *value = NULL; /* the payload frame holds it until the payload ends */
        *pos = start;
        return OPENED;
    }
    *pos = start + size + 1;
    return GOT_SLOTLESS;
}

/* `b:0;` `b:1;` `N;` `d:...;`: *pos becomes the offset after it. */
static PyObject *
simple(Parser *p, Py_ssize_t *pos)
{
    const uchar *d = p->d + *pos;
    Py_ssize_t left = p->end - *pos, s, e, after;
    PyObject *value;
    if (d[0] == 'N' && left >= 2 && d[1] == ';') {
        *pos += 2;
        Py_RETURN_NONE;
    }
    if (d[0] == 'b' && left >= 4 && d[1] == ':' && (d[2] | 1) == '1' && d[3] == ';') {
        *pos += 4;
        return PyBool_FromLong(d[2] == '1');
    }
    if (d[0] == 'd' && (after = float_token(p->d, *pos, p->end, &s, &e)) >= 0) {
        if ((value = float_value(p->d, s, e)))
            *pos = after;
        return value;
    }
    return fail(p, *pos, INVALID), NULL;
}

/* The value token at *pos (slot taken, unless GOT_SLOTLESS) in *value, or a
 * container or payload opened (consuming *key). */
static int
token(Parser *p, Py_ssize_t *pos, PyObject **key, PyObject **value)
{
    switch (*pos < p->end ? p->d[*pos] : 0) {
    case 's':
    case 'S':
        *value = string(p, pos, AS_VALUE);
        break;
    case 'i':
        *value = integer(p, pos, INVALID);
        break;
    case 'a':
        return open_array(p, pos, key) < 0 ? ERROR : OPENED;
    case 'O':
        return open_object(p, pos, key) < 0 ? ERROR : OPENED;
    case 'r':
        *value = reference(p, pos, 1);
        break;
    case 'R': /* takes no slot of its own */
        *value = reference(p, pos, 0);
        return *value ? GOT_SLOTLESS : ERROR;
    case 'E':
        *value = enum_value(p, pos);
        break;
    case 'C':
        return custom(p, pos, key, value);
    case 'b':
    case 'N':
    case 'd':
        *value = simple(p, pos);
        break;
    default:
        fail(p, *pos, INVALID);
        return ERROR;
    }
    return (*value && push_slot(p, *value) == OK) ? GOT_VALUE : ERROR;
}

/* The '}' of the top frame's container: pops the frame; *value the container. */
static int
close_top(Parser *p, Py_ssize_t *pos, PyObject **value)
{
    Frame *f = top(p);
    if (*pos >= p->end || p->d[*pos] != '}')
        return fail(p, *pos, "expected '}'");
    (*pos)++;
    if (PyDict_GET_SIZE(f->cur) != f->count)
        return fail(p, *pos, "duplicate key");
    if (!(*value = close_container(f)))
        return PY;
    pop_frame(p);
    return OK;
}

/* The next thing at *pos: the end of the top container (GOT_CLOSED: its slot and
 * entry were made when it opened) or an element (its key in *key) or a value. */
static int
step(Parser *p, Py_ssize_t *pos, PyObject **key, PyObject **value)
{
    Frame *f = top(p);
    if (f && f->cur) {
        if (!f->left)
            return close_top(p, pos, value) < 0 ? ERROR : GOT_CLOSED;
        f->left--;
        if (!(*key = element_key(p, pos, f->obj == NULL)))
            return ERROR;
    }
    return token(p, pos, key, value);
}

/* One serialize() value at pos, with everything nested in it; *after the offset
 * after it. NULL on error: p->what says a parse error, else a Python exception.
 * Each finished value goes to the enclosing container, or ends the payload being
 * replayed (which hands back its PHPCustom to deliver in turn), or is the result. */
static PyObject *
parse_value(Parser *p, Py_ssize_t pos, Py_ssize_t *after)
{
    PyObject *key = NULL, *value = NULL;
    Frame *f;
    int got;

    for (;;) {
        got = step(p, &pos, &key, &value);
        if (got == OPENED)
            continue;
        if (got == ERROR)
            goto error;
    deliver:
        if (!(f = top(p))) {
            *after = pos;
            return value;
        }
        if (f->cur) {
            if (got != GOT_CLOSED && PyDict_SetItem(f->cur, key, value) < 0)
                goto error;
            Py_CLEAR(key);
            Py_CLEAR(value);
            continue;
        }
        Py_CLEAR(value);
        pos = end_payload(p, pos, 0, &value, &key);
        got = GOT_SLOTLESS;
        goto deliver;
    error:
        Py_CLEAR(key);
        Py_CLEAR(value);
        if (!p->what || !p->payloads)
            return NULL;
        pos = abandon_payload(p, &value, &key);
        got = GOT_SLOTLESS;
        goto deliver;
    }
}

/* -- session formats --------------------------------------------------------- */

static int
set_variable(Parser *p, PyObject *vars, const uchar *name, Py_ssize_t size,
             Py_ssize_t start, Py_ssize_t *pos)
{
    PyObject *key = text(name, size), *value;
    if (!key)
        return PY;
    if (!(value = parse_value(p, start, pos))) {
        Py_DECREF(key);
        return p->what ? PARSE : PY;
    }
    int rc = PyDict_SetItem(vars, key, value);
    Py_DECREF(key);
    Py_DECREF(value);
    return rc < 0 ? PY : OK;
}

/* php: `name|value` repeated; the name runs to the first '|'. */
static PyObject *
decode_php(Parser *p)
{
    PyObject *vars = PyDict_New();
    Py_ssize_t pos = 0;
    while (vars && pos < p->end) {
        const uchar *bar = memchr(p->d + pos, '|', p->end - pos);
        if (!bar) {
            fail(p, pos, "variable name without '|'");
            Py_CLEAR(vars);
        }
        else if (set_variable(p, vars, p->d + pos, bar - (p->d + pos),
                              bar - p->d + 1, &pos) < 0)
            Py_CLEAR(vars);
    }
    return vars;
}

/* php_binary: a length byte (high bit ignored), the name, the value; repeated. */
static PyObject *
decode_php_binary(Parser *p)
{
    PyObject *vars = PyDict_New();
    Py_ssize_t pos = 0;
    while (vars && pos < p->end) {
        Py_ssize_t size = p->d[pos] & 0x7F;
        if (pos + size + 1 >= p->end) {
            fail(p, pos, "variable name runs past the end");
            Py_CLEAR(vars);
        }
        else if (set_variable(p, vars, p->d + pos + 1, size, pos + 1 + size, &pos) < 0)
            Py_CLEAR(vars);
    }
    return vars;
}

/* php_serialize: one serialized array (slot 1), nothing after it. */
static PyObject *
decode_php_serialize(Parser *p)
{
    Py_ssize_t pos;
    PyObject *vars = parse_value(p, 0, &pos);
    if (vars && !PyDict_Check(vars)) {
        fail(p, -1, "php_serialize session is not an array");
        Py_CLEAR(vars);
    }
    else if (vars && pos != p->end) {
        fail(p, pos, "trailing bytes after the session array");
        Py_CLEAR(vars);
    }
    return vars;
}

static PyObject *
decode_value(Parser *p)
{
    Py_ssize_t pos;
    return parse_value(p, 0, &pos);
}

static void
raise_parse_error(Parser *p)
{
    if (p->too_deep)
        PyErr_Format(DecodeError, "nesting deeper than %zd at offset %zd", p->max_depth,
                     p->where);
    else if (p->where < 0)
        PyErr_SetString(DecodeError, p->what);
    else
        PyErr_Format(DecodeError, "%s at offset %zd", p->what, p->where);
}

static PyObject *
decode(PyObject *module, PyObject *args)
{
    PyObject *data, *result;
    const char *fmt;
    Parser p;
    PyObject *(*run)(Parser *);

    memset(&p, 0, sizeof p);
    if (!PyArg_ParseTuple(args, "O!sn:decode", &PyBytes_Type, &data, &fmt, &p.max_depth))
        return NULL;
    if (!DecodeError) {
        PyErr_SetString(PyExc_RuntimeError, "bridge.php._cparse.configure() was not called");
        return NULL;
    }
    if (!strcmp(fmt, "php"))
        run = decode_php;
    else if (!strcmp(fmt, "php_binary"))
        run = decode_php_binary;
    else if (!strcmp(fmt, "php_serialize"))
        run = decode_php_serialize;
    else if (!strcmp(fmt, "value"))
        run = decode_value;
    else
        return PyErr_Format(PyExc_ValueError, "unknown format %s", fmt);
    p.d = (const uchar *)PyBytes_AS_STRING(data);
    p.end = PyBytes_GET_SIZE(data);
    result = run(&p);
    if (!result && p.what)
        raise_parse_error(&p);
    while (p.nframes)
        pop_frame(&p);
    truncate_slots(&p, 0);
    PyMem_Free(p.slots);
    PyMem_Free(p.frames);
    return result;
}

static PyObject *
configure(PyObject *module, PyObject *args)
{
    PyObject *given[5], **kept[5] = {&DecodeError, &ObjectType, &EnumType, &CustomType,
                                     &PlainProps};
    if (!PyArg_ParseTuple(args, "OO!O!O!O:configure", &given[0], &PyType_Type, &given[1],
                          &PyType_Type, &given[2], &PyType_Type, &given[3], &given[4]))
        return NULL;
    for (int i = 0; i < 5; i++) {
        Py_INCREF(given[i]);
        Py_XSETREF(*kept[i], given[i]);
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS,
     "configure(SessionDecodeError, PHPObject, PHPEnum, PHPCustom, plain_props)"},
    {"decode", decode, METH_VARARGS,
     "decode(data, fmt, max_depth): a session ('php', 'php_binary', 'php_serialize') "
     "or one value ('value')"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "bridge.php._cparse",
    "PHP serialize() and session parser in C; see bridge.php.", -1, methods,
};

PyMODINIT_FUNC
PyInit__cparse(void)
{
    init_tables();
    if (!PropsName && !(PropsName = PyUnicode_InternFromString("props")))
        return NULL;
    return PyModule_Create(&module);
}
