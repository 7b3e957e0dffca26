/* The worker's passes from queued records to columns, in C. `_columns.ColumnBuilder` hands
 * `record_columns` a slice of call records and gets back its fields and its positional
 * arguments as columns; it hands `dict_columns` the dicts of a slice's calls (one argument
 * or one result per call) and gets back one list per key. Each returns None when the slice
 * cannot be columns, and the Python passes then decide what it is.
 *
 * Why C: in Python the same result takes four passes over the values (the key lookups, the
 * transposition, a set of types, the checks of ints and strings), each a C loop but each
 * paying per value: ~90 ns for each value of a 16-feature dict, more than the encoder's
 * 37 ns. One pass that looks up, checks and stores costs ~20 ns a value.
 *
 * The rules of `dict_columns` are those of `_columns._plain_column` (which the tests hold this to):
 *   - every dict is exactly a dict, with exactly `keys` (no more, no fewer);
 *   - every value is exactly an int, float, str, bool or None (a float subclass such as
 *     numpy.float64 is not: the v1 path summarises those);
 *   - a string has at most `str_max` characters, an int fits in 64 bits;
 *   - a float that is NaN or infinite is stored as None unless `nan_as_null` says that the
 *     encoder writes it as null itself.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

/* 1 if `value` may stand in a column as it is, 0 if it may after replacing it by None (a
 * non-finite float for an encoder that would fail on it), -1 if the slice cannot be
 * columns. Never sets an exception. */
static int
plain(PyObject *value, int nan_as_null, Py_ssize_t str_max)
{
    if (value == Py_None || PyBool_Check(value))
        return 1;
    if (PyFloat_CheckExact(value))
        return nan_as_null || isfinite(PyFloat_AS_DOUBLE(value)) ? 1 : 0;
    if (PyLong_CheckExact(value)) {
        int overflow = 0;
        (void)PyLong_AsLongLongAndOverflow(value, &overflow);
        return overflow == 0 ? 1 : -1;
    }
    if (PyUnicode_CheckExact(value))
        return PyUnicode_GET_LENGTH(value) <= str_max ? 1 : -1;
    return -1;
}

/* A list of `width` lists of `rows` slots each, to be filled with PyList_SET_ITEM. The slots
 * hold NULL until then, which deallocating a list half filled skips. */
static PyObject *
new_columns(Py_ssize_t width, Py_ssize_t rows)
{
    PyObject *columns = PyList_New(width);
    if (columns == NULL)
        return NULL;
    for (Py_ssize_t k = 0; k < width; k++) {
        PyObject *column = PyList_New(rows);
        if (column == NULL) {
            Py_DECREF(columns);
            return NULL;
        }
        PyList_SET_ITEM(columns, k, column);
    }
    return columns;
}

static PyObject *
dict_columns(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError,
                        "dict_columns(values, keys, nan_as_null, str_max) takes 4 arguments");
        return NULL;
    }
    PyObject *values = PySequence_Fast(args[0], "values must be a sequence");
    if (values == NULL)
        return NULL;
    PyObject *keys = args[1];
    if (!PyTuple_CheckExact(keys)) {
        Py_DECREF(values);
        PyErr_SetString(PyExc_TypeError, "keys must be a tuple");
        return NULL;
    }
    int nan_as_null = PyObject_IsTrue(args[2]);
    Py_ssize_t str_max = PyLong_AsSsize_t(args[3]);
    if (nan_as_null < 0 || (str_max == -1 && PyErr_Occurred())) {
        Py_DECREF(values);
        return NULL;
    }

    Py_ssize_t rows = PySequence_Fast_GET_SIZE(values);
    Py_ssize_t width = PyTuple_GET_SIZE(keys);
    PyObject **row = PySequence_Fast_ITEMS(values);
    PyObject *columns = new_columns(width, rows);
    if (columns == NULL) {
        Py_DECREF(values);
        return NULL;
    }
    for (Py_ssize_t r = 0; r < rows; r++) {
        PyObject *dict = row[r];
        if (!PyDict_CheckExact(dict) || PyDict_GET_SIZE(dict) != width)
            goto not_columns;
        for (Py_ssize_t k = 0; k < width; k++) {
            PyObject *value = PyDict_GetItemWithError(dict, PyTuple_GET_ITEM(keys, k));
            if (value == NULL) {
                if (PyErr_Occurred())
                    goto error;
                goto not_columns; /* the same size, another key */
            }
            int verdict = plain(value, nan_as_null, str_max);
            if (verdict < 0)
                goto not_columns;
            PyList_SET_ITEM(PyList_GET_ITEM(columns, k), r, Py_NewRef(verdict ? value : Py_None));
        }
    }
    Py_DECREF(values);
    return columns;

not_columns:
    /* The lists hold NULLs past the rows filled so far, which list_dealloc skips. */
    Py_DECREF(columns);
    Py_DECREF(values);
    Py_RETURN_NONE;
error:
    Py_DECREF(columns);
    Py_DECREF(values);
    return NULL;
}


/* The fields of a CallRecord (see _record), by position. */
enum { SPEC, STARTED, LATENCY, ERROR, ARGS, KWARGS, RESULT, PREDICTION, EXTRAS, FIELDS };

static PyObject *
record_columns(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "record_columns(records, no_kwargs, skip, nan_as_null, "
                                         "str_max) takes 5 arguments");
        return NULL;
    }
    PyObject *records = PySequence_Fast(args[0], "records must be a sequence");
    if (records == NULL)
        return NULL;
    PyObject *no_kwargs = args[1];
    Py_ssize_t skip = PyLong_AsSsize_t(args[2]);
    int nan_as_null = PyObject_IsTrue(args[3]);
    Py_ssize_t str_max = PyLong_AsSsize_t(args[4]);
    if (PyErr_Occurred()) {
        Py_DECREF(records);
        return NULL;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(records);
    PyObject **record = PySequence_Fast_ITEMS(records);
    if (count == 0 || !PyTuple_CheckExact(record[0]) || PyTuple_GET_SIZE(record[0]) != FIELDS ||
        !PyTuple_CheckExact(PyTuple_GET_ITEM(record[0], ARGS))) {
        Py_DECREF(records);
        Py_RETURN_NONE;
    }
    PyObject *spec = PyTuple_GET_ITEM(record[0], SPEC);
    Py_ssize_t width = PyTuple_GET_SIZE(PyTuple_GET_ITEM(record[0], ARGS)) - skip;
    if (width < 0) {
        Py_DECREF(records);
        Py_RETURN_NONE;
    }
    /* (started, latency, argument columns, results, predictions), and whether every argument
     * and every result is a value a column takes as it is (see `plain`): then the Python
     * passes need not look at them again. */
    int arguments_plain = 1, results_plain = 1;
    PyObject *started = PyList_New(count), *latency = PyList_New(count),
             *arguments = new_columns(width, count), *results = PyList_New(count),
             *predictions = PyList_New(count);
    PyObject *out = NULL;
    if (started == NULL || latency == NULL || arguments == NULL || results == NULL ||
        predictions == NULL)
        goto done;
    for (Py_ssize_t r = 0; r < count; r++) {
        PyObject *fields = record[r];
        if (!PyTuple_CheckExact(fields) || PyTuple_GET_SIZE(fields) != FIELDS)
            goto not_columns; /* a label, or not a record at all */
        PyObject *call_args = PyTuple_GET_ITEM(fields, ARGS);
        PyObject *kwargs = PyTuple_GET_ITEM(fields, KWARGS);
        if (PyTuple_GET_ITEM(fields, SPEC) != spec || PyTuple_GET_ITEM(fields, ERROR) != Py_None ||
            PyTuple_GET_ITEM(fields, EXTRAS) != Py_None ||
            (kwargs != no_kwargs && !(PyDict_CheckExact(kwargs) && PyDict_GET_SIZE(kwargs) == 0)) ||
            !PyTuple_CheckExact(call_args) || PyTuple_GET_SIZE(call_args) != width + skip)
            goto not_columns;
        PyList_SET_ITEM(started, r, Py_NewRef(PyTuple_GET_ITEM(fields, STARTED)));
        PyList_SET_ITEM(latency, r, Py_NewRef(PyTuple_GET_ITEM(fields, LATENCY)));
        PyObject *result = PyTuple_GET_ITEM(fields, RESULT);
        PyList_SET_ITEM(results, r, Py_NewRef(result));
        PyList_SET_ITEM(predictions, r, Py_NewRef(PyTuple_GET_ITEM(fields, PREDICTION)));
        if (results_plain && plain(result, nan_as_null, str_max) != 1)
            results_plain = 0;
        for (Py_ssize_t a = 0; a < width; a++) {
            PyObject *argument = PyTuple_GET_ITEM(call_args, skip + a);
            PyList_SET_ITEM(PyList_GET_ITEM(arguments, a), r, Py_NewRef(argument));
            if (arguments_plain && plain(argument, nan_as_null, str_max) != 1)
                arguments_plain = 0;
        }
    }
    out = Py_BuildValue("(OOOOOOO)", started, latency, arguments, results, predictions,
                        arguments_plain ? Py_True : Py_False, results_plain ? Py_True : Py_False);
    goto done;
not_columns:
    out = Py_NewRef(Py_None);
done:
    /* Lists not filled to the end hold NULLs there, which their deallocation skips. */
    Py_XDECREF(started);
    Py_XDECREF(latency);
    Py_XDECREF(arguments);
    Py_XDECREF(results);
    Py_XDECREF(predictions);
    Py_DECREF(records);
    return out;
}

static PyMethodDef transpose_methods[] = {
    {"record_columns", (PyCFunction)(void (*)(void))record_columns, METH_FASTCALL,
     "record_columns(records, no_kwargs, skip, nan_as_null, str_max) -> (started, latency,\n"
     "arguments, results, predictions, arguments_plain, results_plain), or None\n\n"
     "A slice of call records of one spec, each without an error, keywords or extras and\n"
     "with as many positional arguments as the first, as columns; `arguments` has one\n"
     "column per argument after the first `skip` (a method's self); `*_plain`: whether\n"
     "every value there passes dict_columns' checks unchanged. None otherwise."},
    {"dict_columns", (PyCFunction)(void (*)(void))dict_columns, METH_FASTCALL,
     "dict_columns(values, keys, nan_as_null, str_max) -> list of columns, or None\n\n"
     "The values of each key of `keys` across the dicts `values`, checked as\n"
     "_columns._plain_column checks a column; None if any dict or value does not fit."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef transpose_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "inferloop.sdk._transpose",
    .m_doc = "The worker's passes from queued records to columns (see _columns).",
    .m_size = 0,
    .m_methods = transpose_methods,
};

PyMODINIT_FUNC
PyInit__transpose(void)
{
    return PyModule_Create(&transpose_module);
}
