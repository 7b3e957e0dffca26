/* The per-event values of a columnar (v2) batch, built for the whole batch in C calls:
 * what `validation._columnar_rows` derives for each event before it becomes an `events`
 * row (its event id, its prediction id, its inputs' and outputs' JSON).
 *
 * Why C: `_columnar_rows` built them with one C-level call per value already (a numpy
 * pass for the ids, `%` formats for the rest), and still they cost 0.77 us an event of the
 * collector's 1.7 us of validation (batches of 3 inputs, 1 output: payloads 0.47, event
 * ids 0.17, prediction ids 0.13). Here, with no Python object made but the results, 0.21
 * (0.18, 0.01, 0.02): most of what is left is msgspec encoding the columns.
 *
 *   event_ids(middle, starts, seqs) -> list[str] | None
 *       `contract.columnar_event_id` of every event: 32 hex digits, of which the first 12
 *       come from the start millisecond, the next 12 (`middle`, ASCII bytes) from the
 *       emitter and the last 8 from the sequence number.
 *   prediction_ids(prefix, refs) -> list[str] | None
 *       `contract.columnar_prediction_id` of every int ref (`prefix-<hex>`); str refs
 *       as they are.
 *   payloads(parts, columns, count) -> list[bytes] | None
 *       Event i's JSON is parts[0] + value_0 + parts[1] + ... + value_n-1 + parts[n],
 *       value_k being item i of columns[k], a JSON array of scalars as msgspec encodes a
 *       list (no spaces), cut here at its top-level commas.
 *
 * None means "not for this path": a value of another type or out of range, an array
 * without `count` items. The caller then runs the Python code that this stands in for,
 * which says what is wrong, if anything is.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static const char HEX[] = "0123456789abcdef";

/* The value of an exact int that fits int64: 1, or 0 (no exception left set). */
static int
as_int64(PyObject *value, int64_t *out)
{
    if (!PyLong_CheckExact(value))
        return 0;
    int overflow = 0;
    long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow != 0 || (number == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    *out = (int64_t)number;
    return 1;
}

static inline void
put_hex(Py_UCS1 *into, uint64_t value, int digits)
{
    for (int i = digits - 1; i >= 0; i--) {
        into[i] = (Py_UCS1)HEX[value & 15];
        value >>= 4;
    }
}

/* A list of `count` slots for the caller to fill (PyList_SET_ITEM) or NULL. */
static PyObject *
new_list(PyObject *sequence, Py_ssize_t *count, PyObject ***items)
{
    *count = PySequence_Fast_GET_SIZE(sequence);
    *items = PySequence_Fast_ITEMS(sequence);
    return PyList_New(*count);
}

static PyObject *
event_ids(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyBytes_Check(args[0]) || PyBytes_GET_SIZE(args[0]) != 12) {
        PyErr_SetString(PyExc_TypeError, "event_ids(middle: 12 bytes, starts, seqs)");
        return NULL;
    }
    const char *middle = PyBytes_AS_STRING(args[0]);
    PyObject *starts = PySequence_Fast(args[1], "starts must be a sequence");
    if (starts == NULL)
        return NULL;
    PyObject *seqs = PySequence_Fast(args[2], "seqs must be a sequence");
    if (seqs == NULL) {
        Py_DECREF(starts);
        return NULL;
    }
    Py_ssize_t count;
    PyObject **start_items, **seq_items = PySequence_Fast_ITEMS(seqs);
    PyObject *ids = new_list(starts, &count, &start_items);
    if (ids == NULL || PySequence_Fast_GET_SIZE(seqs) != count)
        goto not_for_this_path;
    for (Py_ssize_t i = 0; i < count; i++) {
        int64_t start, seq;
        if (!as_int64(start_items[i], &start) || !as_int64(seq_items[i], &seq))
            goto not_for_this_path;
        int64_t millis = start / 1000000;
        if (start % 1000000 < 0)
            millis -= 1; /* floor division, as Python's // */
        PyObject *id = PyUnicode_New(32, 127);
        if (id == NULL)
            goto failed;
        Py_UCS1 *digits = PyUnicode_1BYTE_DATA(id);
        put_hex(digits, (uint64_t)millis & ((UINT64_C(1) << 48) - 1), 12);
        memcpy(digits + 12, middle, 12);
        put_hex(digits + 24, (uint64_t)seq & UINT64_C(0xFFFFFFFF), 8);
        PyList_SET_ITEM(ids, i, id);
    }
    goto done;
not_for_this_path:
    if (ids == NULL && PyErr_Occurred())
        goto failed;
    Py_XDECREF(ids);
    ids = Py_NewRef(Py_None);
    goto done;
failed:
    Py_CLEAR(ids);
done:
    Py_DECREF(starts);
    Py_DECREF(seqs);
    return ids;
}

static PyObject *
prediction_ids(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "prediction_ids(prefix: str, refs)");
        return NULL;
    }
    PyObject *prefix = args[0];
    if (!PyUnicode_IS_ASCII(prefix))
        Py_RETURN_NONE;
    Py_ssize_t prefix_length = PyUnicode_GET_LENGTH(prefix);
    const Py_UCS1 *prefix_data = PyUnicode_1BYTE_DATA(prefix);
    PyObject *refs = PySequence_Fast(args[1], "refs must be a sequence");
    if (refs == NULL)
        return NULL;
    Py_ssize_t count;
    PyObject **items;
    PyObject *ids = new_list(refs, &count, &items);
    if (ids == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *ref = items[i];
        if (PyUnicode_CheckExact(ref)) {
            PyList_SET_ITEM(ids, i, Py_NewRef(ref));
            continue;
        }
        int64_t number;
        if (!as_int64(ref, &number) || number < 0) {
            Py_SETREF(ids, Py_NewRef(Py_None));
            goto done;
        }
        int digits = 1;
        while (digits < 16 && ((uint64_t)number >> (4 * digits)) != 0)
            digits++;
        PyObject *id = PyUnicode_New(prefix_length + 1 + digits, 127);
        if (id == NULL) {
            Py_CLEAR(ids);
            goto done;
        }
        Py_UCS1 *text = PyUnicode_1BYTE_DATA(id);
        memcpy(text, prefix_data, prefix_length);
        text[prefix_length] = '-';
        put_hex(text + prefix_length + 1, (uint64_t)number, digits);
        PyList_SET_ITEM(ids, i, id);
    }
done:
    Py_DECREF(refs);
    return ids;
}

/* Where the top-level items of the JSON array `data` begin and end: `count` of them, or
 * 0 when the array holds another number of items or is not one msgspec would write. */
static int
cut_array(const char *data, Py_ssize_t size, Py_ssize_t count, Py_ssize_t *begins,
          Py_ssize_t *ends)
{
    if (size < 2 || data[0] != '[' || data[size - 1] != ']')
        return 0;
    if (size == 2)
        return count == 0;
    Py_ssize_t at = 1, found = 0;
    while (at < size - 1) {
        if (found == count)
            return 0;
        begins[found] = at;
        if (data[at] == '"') {
            at++;
            while (at < size - 1 && data[at] != '"')
                at += data[at] == '\\' ? 2 : 1;
            if (at >= size - 1)
                return 0;
            at++; /* the closing quote */
        }
        else {
            while (at < size - 1 && data[at] != ',')
                at++;
        }
        ends[found++] = at;
        if (at < size - 1) {
            if (data[at] != ',')
                return 0;
            at++;
            if (at == size - 1)
                return 0; /* a trailing comma */
        }
    }
    return found == count;
}

static PyObject *
payloads(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t count;
    if (nargs != 3 || !PyList_Check(args[0]) || !PyList_Check(args[1])
        || (count = PyLong_AsSsize_t(args[2])) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "payloads(parts: list, columns: list, count)");
        return NULL;
    }
    PyObject *parts = args[0], *columns = args[1];
    Py_ssize_t width = PyList_GET_SIZE(columns);
    if (PyList_GET_SIZE(parts) != width + 1) {
        PyErr_SetString(PyExc_ValueError, "payloads needs one part more than columns");
        return NULL;
    }
    Py_ssize_t fixed = 0;
    for (Py_ssize_t k = 0; k <= width; k++) {
        PyObject *part = PyList_GET_ITEM(parts, k);
        if (!PyBytes_Check(part) || (k < width && !PyBytes_Check(PyList_GET_ITEM(columns, k)))) {
            PyErr_SetString(PyExc_TypeError, "payloads takes lists of bytes");
            return NULL;
        }
        fixed += PyBytes_GET_SIZE(part);
    }
    PyObject *out = NULL;
    Py_ssize_t cells = width * count;
    Py_ssize_t *begins = PyMem_Malloc(sizeof(Py_ssize_t) * (cells ? 2 * cells : 1));
    if (begins == NULL)
        return PyErr_NoMemory();
    Py_ssize_t *ends = begins + cells;
    for (Py_ssize_t k = 0; k < width; k++) {
        PyObject *column = PyList_GET_ITEM(columns, k);
        if (!cut_array(PyBytes_AS_STRING(column), PyBytes_GET_SIZE(column), count,
                       begins + k * count, ends + k * count)) {
            out = Py_NewRef(Py_None);
            goto done;
        }
    }
    out = PyList_New(count);
    if (out == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t size = fixed;
        for (Py_ssize_t k = 0; k < width; k++)
            size += ends[k * count + i] - begins[k * count + i];
        PyObject *payload = PyBytes_FromStringAndSize(NULL, size);
        if (payload == NULL) {
            Py_CLEAR(out);
            goto done;
        }
        char *into = PyBytes_AS_STRING(payload);
        for (Py_ssize_t k = 0; k <= width; k++) {
            PyObject *part = PyList_GET_ITEM(parts, k);
            memcpy(into, PyBytes_AS_STRING(part), PyBytes_GET_SIZE(part));
            into += PyBytes_GET_SIZE(part);
            if (k == width)
                break;
            Py_ssize_t begin = begins[k * count + i], length = ends[k * count + i] - begin;
            memcpy(into, PyBytes_AS_STRING(PyList_GET_ITEM(columns, k)) + begin, length);
            into += length;
        }
        PyList_SET_ITEM(out, i, payload);
    }
done:
    PyMem_Free(begins);
    return out;
}

static PyMethodDef columnar_methods[] = {
    {"event_ids", (PyCFunction)(void (*)(void))event_ids, METH_FASTCALL,
     "event_ids(middle, starts, seqs) -> list[str], or None\n\n"
     "The derived event id of every event of a v2 batch (contract.columnar_event_id);\n"
     "`middle` is the emitter's 12 hex digits. None if a value is not an int64."},
    {"prediction_ids", (PyCFunction)(void (*)(void))prediction_ids, METH_FASTCALL,
     "prediction_ids(prefix, refs) -> list[str], or None\n\n"
     "`prefix-<hex>` for every int ref, str refs as they are. None if the prefix is not\n"
     "ASCII or a ref is neither a str nor an int in [0, 2**63)."},
    {"payloads", (PyCFunction)(void (*)(void))payloads, METH_FASTCALL,
     "payloads(parts, columns, count) -> list[bytes], or None\n\n"
     "Per event, the parts with item i of each JSON array in `columns` between them.\n"
     "None if an array does not hold `count` items."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef columnar_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "inferloop.collector._columnar",
    .m_doc = "The per-event values of a v2 batch, in C calls (see validation._columnar_rows).",
    .m_size = 0,
    .m_methods = columnar_methods,
};

PyMODINIT_FUNC
PyInit__columnar(void)
{
    return PyModule_Create(&columnar_module);
}
