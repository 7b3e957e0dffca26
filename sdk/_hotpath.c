/* The `@monitor` wrapper of a plain function, in C: what `_monitor._sync_wrapper` does on
 * every call, less the interpreter's overhead.
 *
 * Why C: the whole cost of a monitored call is the target (issue 13: at or below
 * prometheus_client's, and 1/20 of an OpenTelemetry span), and in Python the wrapper's
 * frame, its attribute reads, its two calls to `perf_counter_ns` and its tuple build are
 * mostly the interpreter's work, not the wrapper's: 586 ns of the serving thread's CPU a
 * call in one measurement, against 340 ns for the same steps here (docs/sdk.md).
 *
 * Only the common path lives here. Whatever is rare is handed to the Python code that
 * already does it, so the two cannot disagree on the rules:
 *   - `fallback` (the Python wrapper) takes the whole call when CUDA timing is on;
 *   - `remember` (`_last.remember`) sets the last prediction when this thread's slot is
 *     not its own or an event loop is running;
 *   - `enqueue` (`_monitor._enqueue`) records a call that raised.
 * `_monitor` builds this wrapper only for specs that need none of the Python wrapper's
 * per-call options (a given prediction id, `cuda=True`).
 *
 * The record appended is the same 9-tuple the Python wrapper builds (`_record.CallRecord`)
 * and the clock is the same: `time.perf_counter_ns` is CLOCK_MONOTONIC on Linux, the one
 * platform setup.py builds this module for (`monotonic_ns()` lets `_monitor` check).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <time.h>

/* Interned attribute names, read on every call. */
static PyObject *s_emitter, *s_cuda_active, *s_prediction_numbers, *s_queue, *s_queue_limit,
    *s_wake_at, *s_wake, *s_set, *s_append, *s_drop_queue_full, *s_thread, *s_prediction;

typedef struct {
    PyObject_HEAD
    PyObject *fn;          /* the wrapped callable */
    PyObject *spec;        /* its MonitorSpec, the record's first field */
    PyObject *state;       /* the `_state` module: `state.emitter` is None until configure() */
    PyObject *fallback;    /* the Python wrapper, for calls with CUDA timing */
    PyObject *remember;    /* `_last.remember` */
    PyObject *enqueue;     /* `_monitor._enqueue` */
    PyObject *last;        /* the ContextVar `_last.last_prediction` */
    PyObject *slot_type;   /* `_last.ThreadSlot` */
    Py_ssize_t thread_at;  /* where a ThreadSlot keeps its `thread` and `prediction` slots */
    Py_ssize_t prediction_at;
    PyObject *running_loop; /* `asyncio._get_running_loop` */
    PyObject *no_kwargs;   /* the one empty dict recorded for calls without keywords */
    /* What the last call read off the emitter, which holds it unchanged for its life. */
    PyObject *emitter;     /* the emitter these were read from, or NULL */
    PyObject *numbers;     /* emitter.prediction_numbers */
    PyObject *queue;       /* emitter.queue, a deque */
    PyObject *append;      /* emitter.queue.append */
    PyObject *wake;        /* emitter.wake, a threading.Event */
    Py_ssize_t queue_limit;
    Py_ssize_t wake_at;
    PyObject *dict;        /* __dict__: functools.wraps writes __name__, __doc__, __wrapped__ */
    PyObject *weakrefs;
    vectorcallfunc vectorcall;
} Monitored;

static inline long long
monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
}

/* The outcome of a call whose result is not needed: 0, or -1 when it raised (`result` is
 * NULL, the exception set). */
static inline int
discard(PyObject *result)
{
    if (result == NULL)
        return -1;
    Py_DECREF(result);
    return 0;
}

/* `_last.remember(prediction)`, inlined for its common case: this thread owns the slot in
 * the context variable and no event loop runs, so the slot is updated in place. Returns 0,
 * or -1 with an exception set. */
static int
remember_prediction(Monitored *self, PyObject *prediction)
{
    PyObject *slot = NULL;
    if (PyContextVar_Get(self->last, Py_None, &slot) < 0)
        return -1;
    int done = 0;
    if (Py_IS_TYPE(slot, (PyTypeObject *)self->slot_type)) {
        /* The slots are read and written where the type's member descriptors say they are,
         * as `slot.thread` and `slot.prediction = ...` would, without the two lookups. */
        PyObject *owner = *(PyObject **)((char *)slot + self->thread_at);
        int mine = owner != NULL && PyLong_CheckExact(owner) &&
                   PyLong_AsUnsignedLong(owner) == PyThread_get_thread_ident();
        if (PyErr_Occurred()) /* not a thread id after all: the slot is not ours */
            PyErr_Clear();
        if (mine) {
            PyObject *loop = PyObject_CallNoArgs(self->running_loop);
            if (loop == NULL) {
                Py_DECREF(slot);
                return -1;
            }
            if (loop == Py_None) {
                PyObject **field = (PyObject **)((char *)slot + self->prediction_at);
                Py_XSETREF(*field, Py_NewRef(prediction));
                done = 1;
            }
            Py_DECREF(loop);
        }
    }
    Py_DECREF(slot);
    if (done)
        return 0;
    return discard(PyObject_CallOneArg(self->remember, prediction));
}

/* The call's positional arguments as a tuple and its keywords as a dict, as the Python
 * wrapper's *args and **kwargs would hold them (the one shared empty dict when the call
 * has no keywords). */
static int
pack_arguments(Monitored *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
               PyObject **out_args, PyObject **out_kwargs)
{
    PyObject *tuple = PyTuple_New(nargs);
    if (tuple == NULL)
        return -1;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        Py_INCREF(args[i]);
        PyTuple_SET_ITEM(tuple, i, args[i]);
    }
    if (kwnames == NULL || PyTuple_GET_SIZE(kwnames) == 0) {
        /* The worker only reads a record's keywords: calls without any share one dict. */
        *out_args = tuple;
        *out_kwargs = Py_NewRef(self->no_kwargs);
        return 0;
    }
    PyObject *kwargs = PyDict_New();
    if (kwargs == NULL) {
        Py_DECREF(tuple);
        return -1;
    }
    Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < nkw; i++) {
        if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0) {
            Py_DECREF(tuple);
            Py_DECREF(kwargs);
            return -1;
        }
    }
    *out_args = tuple;
    *out_kwargs = kwargs;
    return 0;
}

/* Read what the hot path needs off a new emitter (`_emitter.Emitter.__init__` sets these and
 * nothing changes them after). Returns 0, or -1 with an exception set. */
static int
load_emitter(Monitored *self, PyObject *emitter)
{
    PyObject *numbers = NULL, *queue = NULL, *append = NULL, *wake = NULL, *limit = NULL,
             *wake_at = NULL;
    int status = -1;
    if ((numbers = PyObject_GetAttr(emitter, s_prediction_numbers)) == NULL ||
        (queue = PyObject_GetAttr(emitter, s_queue)) == NULL ||
        (append = PyObject_GetAttr(queue, s_append)) == NULL ||
        (wake = PyObject_GetAttr(emitter, s_wake)) == NULL ||
        (limit = PyObject_GetAttr(emitter, s_queue_limit)) == NULL ||
        (wake_at = PyObject_GetAttr(emitter, s_wake_at)) == NULL)
        goto done;
    Py_ssize_t queue_limit = PyLong_AsSsize_t(limit);
    Py_ssize_t wake_length = PyLong_AsSsize_t(wake_at);
    if (PyErr_Occurred())
        goto done;
    /* Every field is replaced before any old value is released (a release may run other
     * code, and another thread's call with it), and the emitter last: a call that finds
     * the emitter it reads cached finds that emitter's fields. The wrapper keeps the old
     * emitter alive until then, so a new one can never be mistaken for it by address. */
    PyObject *old[] = {self->numbers, self->queue, self->append, self->wake, self->emitter};
    self->numbers = Py_NewRef(numbers);
    self->queue = Py_NewRef(queue);
    self->append = Py_NewRef(append);
    self->wake = Py_NewRef(wake);
    self->queue_limit = queue_limit;
    self->wake_at = wake_length;
    self->emitter = Py_NewRef(emitter);
    for (size_t i = 0; i < sizeof(old) / sizeof(old[0]); i++)
        Py_XDECREF(old[i]);
    status = 0;
done:
    Py_XDECREF(numbers);
    Py_XDECREF(queue);
    Py_XDECREF(append);
    Py_XDECREF(wake);
    Py_XDECREF(limit);
    Py_XDECREF(wake_at);
    return status;
}

/* Append the record of a call that returned, or count it dropped when the queue is full.
 * Returns 0, or -1 with an exception set. */
static int
append_record(Monitored *self, PyObject *emitter, long long started, long long latency,
              PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject *result,
              PyObject *prediction)
{
    Py_ssize_t length = PyObject_Length(self->queue);
    if (length < 0)
        return -1;
    if (length >= self->queue_limit)
        return discard(PyObject_CallMethodNoArgs(emitter, s_drop_queue_full));
    PyObject *call_args = NULL, *call_kwargs = NULL;
    if (pack_arguments(self, args, nargs, kwnames, &call_args, &call_kwargs) < 0)
        return -1;
    PyObject *record = PyTuple_New(9);
    PyObject *started_obj = PyLong_FromLongLong(started);
    PyObject *latency_obj = PyLong_FromLongLong(latency);
    if (record == NULL || started_obj == NULL || latency_obj == NULL) {
        Py_XDECREF(record);
        Py_XDECREF(started_obj);
        Py_XDECREF(latency_obj);
        Py_DECREF(call_args);
        Py_DECREF(call_kwargs);
        return -1;
    }
    /* (spec, started, latency, error, args, kwargs, result, prediction, extras); the tuple
     * takes the new references and borrows none. */
    PyTuple_SET_ITEM(record, 0, Py_NewRef(self->spec));
    PyTuple_SET_ITEM(record, 1, started_obj);
    PyTuple_SET_ITEM(record, 2, latency_obj);
    PyTuple_SET_ITEM(record, 3, Py_NewRef(Py_None));
    PyTuple_SET_ITEM(record, 4, call_args);
    PyTuple_SET_ITEM(record, 5, call_kwargs);
    PyTuple_SET_ITEM(record, 6, Py_NewRef(result));
    PyTuple_SET_ITEM(record, 7, Py_NewRef(prediction));
    PyTuple_SET_ITEM(record, 8, Py_NewRef(Py_None));
    /* Neither tuple can be part of a reference cycle: nothing but the queue and then the
     * worker ever refers to a record, and nothing but its record to the arguments, and the
     * worker's release frees them by reference count. Untracked, the garbage collector does
     * not walk them each time the serving threads' allocations start a collection while
     * they wait in the queue (what they refer to stays tracked, and reachable through them
     * as any object held by a non-container is). */
    PyObject_GC_UnTrack(call_args);
    PyObject_GC_UnTrack(record);
    int appended = discard(PyObject_CallOneArg(self->append, record));
    Py_DECREF(record);
    if (appended < 0 || length + 1 != self->wake_at)
        return appended;
    return discard(PyObject_CallMethodNoArgs(self->wake, s_set));
}

/* Hand a call that raised to `_monitor._enqueue`, keeping the exception as it was. */
static void
record_error(Monitored *self, PyObject *emitter, long long started, long long latency,
             PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject *prediction)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL && value != NULL)
        PyException_SetTraceback(value, traceback);
    PyObject *call_args = NULL, *call_kwargs = NULL;
    PyObject *started_obj = PyLong_FromLongLong(started);
    PyObject *latency_obj = PyLong_FromLongLong(latency);
    if (started_obj != NULL && latency_obj != NULL && value != NULL &&
        pack_arguments(self, args, nargs, kwnames, &call_args, &call_kwargs) == 0) {
        PyObject *enqueue_args[10] = {emitter,   self->spec,  started_obj, latency_obj, value,
                                      call_args, call_kwargs, Py_None,     prediction,  Py_None};
        (void)discard(PyObject_Vectorcall(self->enqueue, enqueue_args, 10, NULL));
    }
    Py_XDECREF(call_args);
    Py_XDECREF(call_kwargs);
    Py_XDECREF(started_obj);
    Py_XDECREF(latency_obj);
    /* Monitoring never changes the call's outcome: whatever went wrong above is dropped
     * and the model's own exception goes on. */
    PyErr_Clear();
    PyErr_Restore(type, value, traceback);
}

static PyObject *
monitored_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Monitored *self = (Monitored *)callable;
    PyObject *emitter = PyObject_GetAttr(self->state, s_emitter);
    if (emitter == NULL)
        return NULL;
    if (emitter == Py_None) {
        Py_DECREF(emitter);
        return PyObject_Vectorcall(self->fn, args, nargsf, kwnames);
    }
    if (emitter != self->emitter && load_emitter(self, emitter) < 0)
        goto not_monitored;
    PyObject *cuda = PyObject_GetAttr(emitter, s_cuda_active);
    if (cuda == NULL)
        goto not_monitored;
    int with_cuda = PyObject_IsTrue(cuda);
    Py_DECREF(cuda);
    if (with_cuda < 0)
        goto not_monitored;
    if (with_cuda) {
        Py_DECREF(emitter);
        return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
    }

    PyObject *prediction = PyIter_Next(self->numbers);
    if (prediction == NULL)
        goto not_monitored;
    if (remember_prediction(self, prediction) < 0) {
        Py_DECREF(prediction);
        goto not_monitored;
    }

    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    long long started = monotonic_ns();
    PyObject *result = PyObject_Vectorcall(self->fn, args, nargsf, kwnames);
    long long latency = monotonic_ns() - started;
    if (result == NULL)
        record_error(self, emitter, started, latency, args, nargs, kwnames, prediction);
    else if (append_record(self, emitter, started, latency, args, nargs, kwnames, result,
                           prediction) < 0)
        PyErr_Clear(); /* out of memory while recording: the caller still gets its result */
    Py_DECREF(prediction);
    Py_DECREF(emitter);
    return result;

not_monitored:
    /* The emitter is not what this wrapper expects (or memory ran out): monitoring steps
     * aside for this call, which runs as if unmonitored. */
    Py_DECREF(emitter);
    PyErr_Clear();
    return PyObject_Vectorcall(self->fn, args, nargsf, kwnames);
}

/* Where instances of `type` keep the `__slots__` entry `name`, or -1 with an exception set
 * if it is not such an entry. */
static Py_ssize_t
slot_offset(PyObject *type, PyObject *name)
{
    PyObject *descriptor = PyObject_GetAttr(type, name);
    if (descriptor == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        descriptor = Py_NewRef(Py_None);
    }
    if (descriptor == NULL)
        return -1;
    Py_ssize_t offset = -1;
    if (Py_IS_TYPE(descriptor, &PyMemberDescr_Type) &&
        ((PyMemberDescrObject *)descriptor)->d_member->type == T_OBJECT_EX &&
        !(((PyMemberDescrObject *)descriptor)->d_member->flags & READONLY))
        offset = ((PyMemberDescrObject *)descriptor)->d_member->offset;
    else
        PyErr_Format(PyExc_TypeError, "slot_type.%U must be a writable __slots__ entry", name);
    Py_DECREF(descriptor);
    return offset;
}

static PyObject *
monitored_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"fn",          "spec",         "state",     "fallback",
                            "remember",    "enqueue",      "last_prediction",
                            "slot_type",   "running_loop", "no_kwargs", NULL};
    PyObject *fn, *spec, *state, *fallback, *remember, *enqueue, *last, *slot_type, *running_loop,
        *no_kwargs;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOOOOOO!:Monitored", names, &fn, &spec,
                                     &state, &fallback, &remember, &enqueue, &last, &slot_type,
                                     &running_loop, &PyDict_Type, &no_kwargs))
        return NULL;
    if (!PyContextVar_CheckExact(last)) {
        PyErr_SetString(PyExc_TypeError, "last_prediction must be a ContextVar");
        return NULL;
    }
    if (!PyType_Check(slot_type)) {
        PyErr_SetString(PyExc_TypeError, "slot_type must be a type");
        return NULL;
    }
    Py_ssize_t thread_at = slot_offset(slot_type, s_thread);
    Py_ssize_t prediction_at = thread_at < 0 ? -1 : slot_offset(slot_type, s_prediction);
    if (prediction_at < 0)
        return NULL;
    Monitored *self = (Monitored *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->fn = Py_NewRef(fn);
    self->spec = Py_NewRef(spec);
    self->state = Py_NewRef(state);
    self->fallback = Py_NewRef(fallback);
    self->remember = Py_NewRef(remember);
    self->enqueue = Py_NewRef(enqueue);
    self->last = Py_NewRef(last);
    self->slot_type = Py_NewRef(slot_type);
    self->thread_at = thread_at;
    self->prediction_at = prediction_at;
    self->running_loop = Py_NewRef(running_loop);
    self->no_kwargs = Py_NewRef(no_kwargs);
    self->vectorcall = monitored_vectorcall;
    return (PyObject *)self;
}

static int
monitored_traverse(Monitored *self, visitproc visit, void *arg)
{
    Py_VISIT(self->fn);
    Py_VISIT(self->spec);
    Py_VISIT(self->state);
    Py_VISIT(self->fallback);
    Py_VISIT(self->remember);
    Py_VISIT(self->enqueue);
    Py_VISIT(self->last);
    Py_VISIT(self->slot_type);
    Py_VISIT(self->running_loop);
    Py_VISIT(self->no_kwargs);
    Py_VISIT(self->emitter);
    Py_VISIT(self->numbers);
    Py_VISIT(self->queue);
    Py_VISIT(self->append);
    Py_VISIT(self->wake);
    Py_VISIT(self->dict);
    return 0;
}

static int
monitored_clear(Monitored *self)
{
    Py_CLEAR(self->fn);
    Py_CLEAR(self->spec);
    Py_CLEAR(self->state);
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->remember);
    Py_CLEAR(self->enqueue);
    Py_CLEAR(self->last);
    Py_CLEAR(self->slot_type);
    Py_CLEAR(self->running_loop);
    Py_CLEAR(self->no_kwargs);
    Py_CLEAR(self->emitter);
    Py_CLEAR(self->numbers);
    Py_CLEAR(self->queue);
    Py_CLEAR(self->append);
    Py_CLEAR(self->wake);
    Py_CLEAR(self->dict);
    return 0;
}

static void
monitored_dealloc(Monitored *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakrefs != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    monitored_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Bound like a function: looked up on an instance, a method of that instance. */
static PyObject *
monitored_descr_get(PyObject *self, PyObject *obj, PyObject *type)
{
    if (obj == NULL || obj == Py_None)
        return Py_NewRef(self);
    return PyMethod_New(self, obj);
}

/* A function is copied as itself; so is its wrapper (copy.deepcopy of a wrapped module). */
static PyObject *
monitored_copy(PyObject *self, PyObject *unused)
{
    return Py_NewRef(self);
}

static PyObject *
monitored_repr(Monitored *self)
{
    return PyUnicode_FromFormat("<inferloop monitored %R>", self->fn);
}

static PyObject *
hotpath_monotonic_ns(PyObject *module, PyObject *unused)
{
    return PyLong_FromLongLong(monotonic_ns());
}

static PyMethodDef hotpath_functions[] = {
    {"monotonic_ns", hotpath_monotonic_ns, METH_NOARGS,
     "The clock the wrapper reads (time.perf_counter_ns's on Linux), in ns."},
    {NULL, NULL, 0, NULL},
};

static PyMethodDef monitored_methods[] = {
    {"__copy__", monitored_copy, METH_NOARGS, NULL},
    {"__deepcopy__", monitored_copy, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef monitored_members[] = {
    {"__dictoffset__", T_PYSSIZET, offsetof(Monitored, dict), READONLY},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(Monitored, weakrefs), READONLY},
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(Monitored, vectorcall), READONLY},
    {NULL},
};

static PyGetSetDef monitored_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL},
};

static PyType_Slot monitored_slots[] = {
    {Py_tp_doc, "A monitored function (see inferloop.sdk.monitor)."},
    {Py_tp_new, monitored_new},
    {Py_tp_dealloc, monitored_dealloc},
    {Py_tp_traverse, monitored_traverse},
    {Py_tp_clear, monitored_clear},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_descr_get, monitored_descr_get},
    {Py_tp_repr, monitored_repr},
    {Py_tp_methods, monitored_methods},
    {Py_tp_members, monitored_members},
    {Py_tp_getset, monitored_getset},
    {0, NULL},
};

static PyType_Spec monitored_spec = {
    .name = "inferloop.sdk._hotpath.Monitored",
    .basicsize = sizeof(Monitored),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL |
             Py_TPFLAGS_METHOD_DESCRIPTOR,
    .slots = monitored_slots,
};

static int
intern_names(void)
{
#define INTERN(var, text)                                                                      \
    if ((var = PyUnicode_InternFromString(text)) == NULL)                                      \
        return -1;
    INTERN(s_emitter, "emitter");
    INTERN(s_cuda_active, "cuda_active");
    INTERN(s_prediction_numbers, "prediction_numbers");
    INTERN(s_queue, "queue");
    INTERN(s_queue_limit, "queue_limit");
    INTERN(s_wake_at, "wake_at");
    INTERN(s_wake, "wake");
    INTERN(s_set, "set");
    INTERN(s_append, "append");
    INTERN(s_drop_queue_full, "drop_queue_full");
    INTERN(s_thread, "thread");
    INTERN(s_prediction, "prediction");
#undef INTERN
    return 0;
}

static int
hotpath_exec(PyObject *module)
{
    if (intern_names() < 0)
        return -1;
    PyObject *type = PyType_FromModuleAndSpec(module, &monitored_spec, NULL);
    if (type == NULL)
        return -1;
    int status = PyModule_AddObjectRef(module, "Monitored", type);
    Py_DECREF(type);
    return status;
}

static PyModuleDef_Slot hotpath_slots[] = {
    {Py_mod_exec, hotpath_exec},
    {0, NULL},
};

static struct PyModuleDef hotpath_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "inferloop.sdk._hotpath",
    .m_doc = "The @monitor wrapper's common path in C (see _monitor).",
    .m_size = 0,
    .m_methods = hotpath_functions,
    .m_slots = hotpath_slots,
};

PyMODINIT_FUNC
PyInit__hotpath(void)
{
    return PyModuleDef_Init(&hotpath_module);
}
