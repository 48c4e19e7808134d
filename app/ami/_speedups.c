/* The AMI parser's line splitter in C: the same result as app/ami/parser.py's
 * ``py_split_lines`` (its pure-Python twin, which stays the reference and the fallback).
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
    /* FNV-1a over the characters and the length */
    uint32_t h = 2166136261u ^ (uint32_t)len;
    for (Py_ssize_t i = start; i < end; i++) {
        h = (h ^ data1[i]) * 16777619u;
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

static PyMethodDef methods[] = {
    {"split_lines", split_lines, METH_O,
     "split_lines(raw: bytes) -> (keys, values, index) | None: one AMI message's lines."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "app.ami._speedups",
    .m_doc = "C version of the AMI parser's line splitter (see app/ami/parser.py).",
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
    return PyModule_Create(&module_def);
}
