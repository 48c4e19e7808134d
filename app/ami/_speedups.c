/* The AMI hot path's loops in C: the parser's line splitter (the same result as
 * app/ami/parser.py's ``py_split_lines``), the normaliser's scrub and timestamp (as
 * app/ami/normalise.py's ``py_scrub`` and ``parse_timestamp``) and the event log's binary
 * COPY encoder (as app/store/copy.py's ``py_copy_binary``). The pure-Python twins stay
 * the reference and the fallback.
 *
 *     split_lines(raw: bytes) -> tuple[list[str], list[str], dict[str, str]] | None
 *
 * ``raw`` is one complete AMI message without its terminating blank line. It is decoded
 * as UTF-8 with errors="replace" and cut into lines at "\r\n"; each line is cut at its
 * first ": " into key and value. An empty line is skipped; "Key:" (a colon at the end, no
 * space anywhere) is a key with an empty value; any other line without ": " makes the
 * whole message malformed (None). The dict holds the first value of each key.
 *
 * Why C: splitting a ~20-line frame into ~40 strings and a dict was a quarter of the
 * service's CPU per event in Python; here it is one pass with no intermediate lists.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <stdint.h>

static PyObject *empty_str;

/* Header names, and short values, recur in every frame ("Channel", "Uniqueid", "call,all",
 * "dagpenge"). A small table remembers the last string made for each slot: a name or
 * value already there is reused (no new object, its hash already known, and interned, so
 * the service's ``frame.get("Channel")`` matches it by identity). A slot that holds some
 * other string is simply overwritten. Only 1-byte text (ASCII or Latin-1) goes through
 * it; the result is the same string either way, only its identity differs. */
#define CACHE_SLOTS 1024
#define CACHE_MAX_LEN 32
static PyObject *cache[CACHE_SLOTS];

static PyObject *
substring(PyObject *text, const Py_UCS1 *data1, Py_ssize_t start, Py_ssize_t end)
{
    Py_ssize_t len = end - start;
    if (data1 == NULL || len > CACHE_MAX_LEN) {
        return PyUnicode_Substring(text, start, end);
    }
    /* The slot: from the length and four of the characters (first, second, middle,
     * last), not all of them: a slot shared by two strings only costs a new one. */
    uint32_t h = (uint32_t)len * 2654435761u;
    if (len > 0) {
        const Py_UCS1 *p = data1 + start;
        h ^= (uint32_t)p[0] | (uint32_t)p[len > 1] << 8 | (uint32_t)p[len / 2] << 16 |
             (uint32_t)p[len - 1] << 24;
        h *= 2246822519u;
        h ^= h >> 15;
    }
    PyObject **slot = &cache[h & (CACHE_SLOTS - 1)];
    PyObject *hit = *slot;
    if (hit != NULL && PyUnicode_GET_LENGTH(hit) == len &&
        PyUnicode_KIND(hit) == PyUnicode_1BYTE_KIND &&
        memcmp(PyUnicode_1BYTE_DATA(hit), data1 + start, (size_t)len) == 0) {
        return Py_NewRef(hit);
    }
    PyObject *made = PyUnicode_Substring(text, start, end);
    if (made == NULL) {
        return NULL;
    }
    if (PyUnicode_KIND(made) != PyUnicode_1BYTE_KIND) {
        return made; /* not expected from 1-byte text; never cached */
    }
    PyUnicode_InternInPlace(&made);
    Py_XSETREF(*slot, Py_NewRef(made));
    return made;
}

static PyObject *
split_lines(PyObject *module, PyObject *arg)
{
    (void)module;
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "split_lines() takes bytes");
        return NULL;
    }
    PyObject *text = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(arg), PyBytes_GET_SIZE(arg),
                                          "replace");
    if (text == NULL) {
        return NULL;
    }
    PyObject *keys = PyList_New(0);
    PyObject *values = PyList_New(0);
    PyObject *index = PyDict_New();
    PyObject *result = NULL;
    if (keys == NULL || values == NULL || index == NULL) {
        goto done;
    }
    const int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    const Py_UCS1 *data1 = kind == PyUnicode_1BYTE_KIND ? (const Py_UCS1 *)data : NULL;
    const Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    Py_ssize_t start = 0;
    while (start <= n) {
        /* This line: [start, end), ended by "\r\n" or by the end of the text. */
        Py_ssize_t end = start;
        Py_ssize_t sep = -1; /* where its first ": " is */
        int space = 0;       /* whether it has a " " at all */
        if (data1 != NULL) {
            /* 1-byte text (nearly every frame): memchr for the line's end and its ": " */
            for (;;) {
                const Py_UCS1 *cr = memchr(data1 + end, '\r', (size_t)(n - end));
                if (cr == NULL) {
                    end = n;
                    break;
                }
                end = cr - data1;
                if (end + 1 < n && data1[end + 1] == '\n') {
                    break;
                }
                end++;
            }
            for (Py_ssize_t at = start; at < end;) {
                const Py_UCS1 *colon = memchr(data1 + at, ':', (size_t)(end - at));
                if (colon == NULL) {
                    break;
                }
                at = colon - data1;
                if (at + 1 < end && data1[at + 1] == ' ') {
                    sep = at;
                    break;
                }
                at++;
            }
            space = sep >= 0 || memchr(data1 + start, ' ', (size_t)(end - start)) != NULL;
        }
        else {
            while (end < n) {
                Py_UCS4 c = PyUnicode_READ(kind, data, end);
                if (c == '\r' && end + 1 < n && PyUnicode_READ(kind, data, end + 1) == '\n') {
                    break;
                }
                if (c == ' ') {
                    space = 1;
                }
                else if (c == ':' && sep < 0 && end + 1 < n &&
                         PyUnicode_READ(kind, data, end + 1) == ' ') {
                    sep = end;
                }
                end++;
            }
        }
        if (end > start) {
            PyObject *key;
            PyObject *value;
            if (sep >= 0) {
                key = substring(text, data1, start, sep);
                value = substring(text, data1, sep + 2, end);
            }
            else if (PyUnicode_READ(kind, data, end - 1) == ':' && !space) {
                key = substring(text, data1, start, end - 1);
                value = Py_NewRef(empty_str);
            }
            else {
                result = Py_NewRef(Py_None); /* not AMI */
                goto done;
            }
            if (key == NULL || value == NULL) {
                Py_XDECREF(key);
                Py_XDECREF(value);
                goto done;
            }
            int failed = PyList_Append(keys, key) < 0 || PyList_Append(values, value) < 0;
            if (!failed) {
                PyObject *had = PyDict_SetDefault(index, key, value); /* first one wins */
                failed = had == NULL;
            }
            Py_DECREF(key);
            Py_DECREF(value);
            if (failed) {
                goto done;
            }
        }
        start = end + 2; /* past "\r\n"; past the end when the text ended */
    }
    result = PyTuple_Pack(3, keys, values, index);
done:
    Py_DECREF(text);
    Py_XDECREF(keys);
    Py_XDECREF(values);
    Py_XDECREF(index);
    return result;
}

/* scrub(index, hash, mask, free_text) -> dict: app/ami/normalise.py's ``py_scrub`` (its
 * twin and reference). A copy of ``index`` in which the value of every key ending in
 * CallerIDNum, CallerIDName, ConnectedLineNum or ConnectedLineName is ``hash(value)``,
 * and the value of every key in ``free_text`` that has six or more decimal digits in a
 * row (what the mask's pattern needs to match) is ``mask(value)``. */
static const char *caller_suffixes[] = {"CallerIDNum", "CallerIDName", "ConnectedLineNum",
                                        "ConnectedLineName"};
static PyObject *caller_suffix_strs[4];

static int
is_caller_key(PyObject *key)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(key);
    if (n < 11) {
        return 0;
    }
    Py_UCS4 last = PyUnicode_READ_CHAR(key, n - 1);
    if (last != 'm' && last != 'e') {
        return 0;
    }
    if (PyUnicode_KIND(key) == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *data = PyUnicode_1BYTE_DATA(key);
        for (int i = 0; i < 4; i++) {
            size_t len = strlen(caller_suffixes[i]);
            if ((size_t)n >= len && memcmp(data + n - len, caller_suffixes[i], len) == 0) {
                return 1;
            }
        }
        return 0;
    }
    for (int i = 0; i < 4; i++) {
        Py_ssize_t r = PyUnicode_Tailmatch(key, caller_suffix_strs[i], 0, n, 1);
        if (r != 0) {
            return (int)r; /* 1, or -1 with an error set */
        }
    }
    return 0;
}

static int
has_digit_run(PyObject *value)
{
    const int kind = PyUnicode_KIND(value);
    const void *data = PyUnicode_DATA(value);
    const Py_ssize_t n = PyUnicode_GET_LENGTH(value);
    Py_ssize_t run = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (Py_UNICODE_ISDECIMAL(PyUnicode_READ(kind, data, i))) {
            if (++run >= 6) {
                return 1;
            }
        }
        else {
            run = 0;
        }
    }
    return 0;
}

static PyObject *
scrub(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4 || !PyDict_Check(args[0]) || !PyAnySet_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "scrub(index: dict, hash, mask, free_text: set)");
        return NULL;
    }
    PyObject *index = args[0], *hash = args[1], *mask = args[2], *free_text = args[3];
    PyObject *out = PyDict_Copy(index);
    if (out == NULL) {
        return NULL;
    }
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(index, &pos, &key, &value)) {
        if (!PyUnicode_Check(key) || !PyUnicode_Check(value)) {
            PyErr_SetString(PyExc_TypeError, "scrub() takes str keys and values");
            goto fail;
        }
        PyObject *fn = NULL;
        int caller = is_caller_key(key);
        if (caller < 0) {
            goto fail;
        }
        if (caller) {
            fn = hash;
        }
        else {
            int free_key = PySet_Contains(free_text, key);
            if (free_key < 0) {
                goto fail;
            }
            if (free_key && has_digit_run(value)) {
                fn = mask;
            }
        }
        if (fn != NULL) {
            PyObject *replaced = PyObject_CallOneArg(fn, value);
            if (replaced == NULL) {
                goto fail;
            }
            int failed = PyDict_SetItem(out, key, replaced) < 0;
            Py_DECREF(replaced);
            if (failed) {
                goto fail;
            }
        }
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

/* copy_binary(rows, kinds) -> bytes: PostgreSQL's binary COPY stream (header, rows,
 * trailer) for ``rows`` (a list of tuples), column i encoded as kinds[i] says:
 *   't' text (str), 'b' bytes as they are (json's binary form is its text; a str is
 *   taken as UTF-8), 'T' timestamptz (datetime; microseconds since 2000-01-01 UTC; one
 *   not in UTC, or naive, is first put through astimezone(UTC), as asyncpg does);
 *   None is NULL in any column. (The kinds the COPY-loaded tables need.)
 * The same bytes as app/store/copy.py's ``py_copy_binary`` (its twin and reference). */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} Buf;

static int
buf_grow(Buf *b, size_t more)
{
    if (b->len + more <= b->cap) {
        return 0;
    }
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + more) {
        cap *= 2;
    }
    char *data = PyMem_Realloc(b->data, cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static int
buf_put(Buf *b, const void *src, size_t n)
{
    if (buf_grow(b, n) < 0) {
        return -1;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

static int
buf_be(Buf *b, uint64_t v, int nbytes)
{
    unsigned char out[8];
    for (int i = nbytes - 1; i >= 0; i--) {
        out[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
    return buf_put(b, out, (size_t)nbytes);
}

static int64_t
days_from_civil(int64_t y, int64_t m, int64_t d)
{
    /* days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm) */
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static PyObject *utc_tz; /* datetime.timezone.utc */

static int
put_timestamp(Buf *b, PyObject *v)
{
    if (!PyDateTime_Check(v)) {
        PyErr_SetString(PyExc_TypeError, "copy_binary(): a timestamptz must be a datetime");
        return -1;
    }
    PyObject *dt = Py_NewRef(v);
    PyObject *tz = PyDateTime_DATE_GET_TZINFO(v);
    if (tz != utc_tz) {
        Py_DECREF(dt);
        dt = PyObject_CallMethod(v, "astimezone", "O", utc_tz);
        if (dt == NULL) {
            return -1;
        }
    }
    int64_t days = days_from_civil(PyDateTime_GET_YEAR(dt), PyDateTime_GET_MONTH(dt),
                                   PyDateTime_GET_DAY(dt)) -
                   10957; /* 1970-01-01 -> 2000-01-01 */
    int64_t secs = days * 86400 + PyDateTime_DATE_GET_HOUR(dt) * 3600 +
                   PyDateTime_DATE_GET_MINUTE(dt) * 60 + PyDateTime_DATE_GET_SECOND(dt);
    int64_t micros = secs * 1000000 + PyDateTime_DATE_GET_MICROSECOND(dt);
    Py_DECREF(dt);
    return buf_be(b, 8, 4) < 0 ? -1 : buf_be(b, (uint64_t)micros, 8);
}

static int
put_value(Buf *b, char kind, PyObject *v)
{
    if (v == Py_None) {
        return buf_be(b, 0xffffffffu, 4);
    }
    switch (kind) {
    case 't':
    case 'b': {
        const char *data;
        Py_ssize_t n;
        if (PyUnicode_Check(v)) {
            data = PyUnicode_AsUTF8AndSize(v, &n);
            if (data == NULL) {
                return -1;
            }
        }
        else if (kind == 'b' && PyBytes_Check(v)) {
            data = PyBytes_AS_STRING(v);
            n = PyBytes_GET_SIZE(v);
        }
        else {
            PyErr_Format(PyExc_TypeError, "copy_binary(): column kind '%c' takes %s, not %.100s",
                         kind, kind == 't' ? "str" : "bytes or str", Py_TYPE(v)->tp_name);
            return -1;
        }
        if (n > 0x7fffffff) {
            PyErr_SetString(PyExc_OverflowError, "copy_binary(): value too long");
            return -1;
        }
        return buf_be(b, (uint64_t)n, 4) < 0 ? -1 : buf_put(b, data, (size_t)n);
    }
    case 'T':
        return put_timestamp(b, v);
    default:
        PyErr_Format(PyExc_ValueError, "copy_binary(): unknown column kind '%c'", kind);
        return -1;
    }
}

static PyObject *
copy_binary(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyList_Check(args[0]) || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "copy_binary(rows: list[tuple], kinds: bytes)");
        return NULL;
    }
    PyObject *rows = args[0];
    const char *kinds = PyBytes_AS_STRING(args[1]);
    const Py_ssize_t ncols = PyBytes_GET_SIZE(args[1]);
    Buf b = {NULL, 0, 0};
    static const char header[] = "PGCOPY\n\377\r\n\0";
    if (buf_put(&b, header, 11) < 0 || buf_be(&b, 0, 4) < 0 || buf_be(&b, 0, 4) < 0) {
        goto fail;
    }
    for (Py_ssize_t r = 0; r < PyList_GET_SIZE(rows); r++) {
        /* held while its values are encoded: astimezone() runs Python code */
        PyObject *row = Py_NewRef(PyList_GET_ITEM(rows, r));
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != ncols) {
            PyErr_Format(PyExc_ValueError, "copy_binary(): row %zd is not a tuple of %zd",
                         r, ncols);
            Py_DECREF(row);
            goto fail;
        }
        int failed = buf_be(&b, (uint64_t)ncols, 2) < 0;
        for (Py_ssize_t c = 0; c < ncols && !failed; c++) {
            failed = put_value(&b, kinds[c], PyTuple_GET_ITEM(row, c)) < 0;
        }
        Py_DECREF(row);
        if (failed) {
            goto fail;
        }
    }
    if (buf_be(&b, 0xffff, 2) < 0) {
        goto fail;
    }
    PyObject *out = PyBytes_FromStringAndSize(b.data, (Py_ssize_t)b.len);
    PyMem_Free(b.data);
    return out;
fail:
    PyMem_Free(b.data);
    return NULL;
}

/* utc_time(value: str) -> datetime | None: app/ami/normalise.py's ``parse_timestamp``
 * (its twin and reference). "SECONDS[.FRACTION]", ASCII digits only, seconds since the
 * epoch; the fraction's first six digits are the microseconds. None for anything else,
 * or for a time outside datetime's years (1-9999). */
static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    /* the inverse of days_from_civil (H. Hinnant's algorithm) */
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const int64_t doe = z - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static PyObject *
utc_time(PyObject *module, PyObject *arg)
{
    (void)module;
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "utc_time() takes str");
        return NULL;
    }
    if (PyUnicode_KIND(arg) != PyUnicode_1BYTE_KIND) {
        Py_RETURN_NONE; /* not ASCII digits */
    }
    const Py_UCS1 *p = PyUnicode_1BYTE_DATA(arg);
    const Py_ssize_t n = PyUnicode_GET_LENGTH(arg);
    Py_ssize_t i = 0;
    int64_t secs = 0;
    while (i < n && p[i] != '.') {
        if (p[i] < '0' || p[i] > '9') {
            Py_RETURN_NONE;
        }
        if (secs > 253402300799LL) { /* past 9999-12-31: stop counting, it is None */
            Py_RETURN_NONE;
        }
        secs = secs * 10 + (p[i] - '0');
        i++;
    }
    if (i == 0 || secs > 253402300799LL) {
        Py_RETURN_NONE;
    }
    int micros = 0;
    if (i < n) { /* p[i] == '.' */
        i++;
        for (Py_ssize_t k = 0; i + k < n; k++) {
            Py_UCS1 c = p[i + k];
            if (c < '0' || c > '9') {
                Py_RETURN_NONE;
            }
            if (k < 6) {
                micros = micros * 10 + (c - '0');
            }
        }
        for (Py_ssize_t k = n - i; k < 6; k++) {
            micros *= 10; /* ".5" is 500000 */
        }
    }
    int64_t year;
    int month, day;
    civil_from_days(secs / 86400, &year, &month, &day);
    int rest = (int)(secs % 86400);
    return PyDateTimeAPI->DateTime_FromDateAndTime((int)year, month, day, rest / 3600,
                                                   rest / 60 % 60, rest % 60, micros, utc_tz,
                                                   PyDateTimeAPI->DateTimeType);
}

static PyMethodDef methods[] = {
    {"utc_time", utc_time, METH_O,
     "utc_time(value: str) -> datetime | None: an AMI Timestamp header as UTC."},
    {"copy_binary", (PyCFunction)(void (*)(void))copy_binary, METH_FASTCALL,
     "copy_binary(rows, kinds) -> bytes: PostgreSQL's binary COPY stream of the rows."},
    {"split_lines", split_lines, METH_O,
     "split_lines(raw: bytes) -> (keys, values, index) | None: one AMI message's lines."},
    {"scrub", (PyCFunction)(void (*)(void))scrub, METH_FASTCALL,
     "scrub(index, hash, mask, free_text) -> dict: the frame's fields for the log."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "app.ami._speedups",
    .m_doc = "C versions of the AMI parser's line splitter (app/ami/parser.py), the "
             "normaliser's scrub and timestamp (app/ami/normalise.py) and the event log's "
             "binary COPY encoder (app/store/copy.py).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    empty_str = PyUnicode_FromStringAndSize("", 0);
    if (empty_str == NULL) {
        return NULL;
    }
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL) {
        return NULL;
    }
    utc_tz = PyDateTime_TimeZone_UTC;
    for (int i = 0; i < 4; i++) {
        caller_suffix_strs[i] = PyUnicode_FromString(caller_suffixes[i]);
        if (caller_suffix_strs[i] == NULL) {
            return NULL;
        }
    }
    return PyModule_Create(&module_def);
}
