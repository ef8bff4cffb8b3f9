/* kalshi_ws._speedups: the learned shapes' parser in C (optional; see _shapes.py).
 *
 * A Shape reads a frame's bytes by one learned shape: the same rules as the shape's
 * regular expression and generated Python parser in kalshi_ws/_shapes.py, which
 * builds each Shape from the same description and keeps it only if it reads its own
 * frame into what the general path made of it.
 *
 * The frame is one run of literal bytes and values. A string value matches only
 * without escapes or control characters (so its bytes, decoded strictly as UTF-8,
 * are the decoded string); an integer only as a JSON integer of at most 18 digits
 * with no leading zero. The literals are compared byte for byte, and the frame must
 * end with the last one. Nothing is converted until the whole frame has matched and
 * every string in it is decoded.
 *
 * parse() returns (type, sid, seq, message, sending_ts_ms) or None: None when the
 * frame does not match, and when a string is not valid UTF-8 or a converter raises an
 * Exception (the frame then takes the general path, which reports it as always).
 *
 * Called by the reader thread only, holding the GIL throughout. The message is made
 * as the Python parser makes it: object.__new__(cls), then each slot through its
 * member descriptor's __set__, then `extra`.
 *
 * Beside it: split_data (the transport's framing loop), Constructor (StreamUpdate),
 * ladder (_wire._ladder: a snapshot's side through the decimal cache), split_ladder
 * (orderbook._load_side's check and split of a side as Kalshi sends it) and
 * changed_side (orderbook._changed_side: a side after a delta), each with the results
 * of the Python code it stands for.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <string.h>

#define API_VERSION 2 /* see _compiled.API_VERSION */
#ifndef SOURCE_DIGEST
#define SOURCE_DIGEST "" /* setup.py defines it: the SHA-256 of this file, in hex */
#endif
#define MAX_STEPS 256
#define MAX_DIGITS 18

enum { KIND_STRING = 0, KIND_INTEGER = 1 };
enum { TO_NOTHING = 0, TO_SID = 1, TO_SEQ = 2, TO_SENT = 3, TO_SLOT = 4, TO_EXTRA = 5 };
enum { CONV_NONE = 0, CONV_DECIMAL = 1, CONV_CALL = 2 };

typedef struct {
    const char *literal; /* the bytes before the value (owned by Shape.literals) */
    Py_ssize_t literal_len;
    int kind;
    int target;
    int conv;
    PyObject *descr;   /* TO_SLOT: the slot's member descriptor */
    PyObject *convert; /* CONV_DECIMAL, CONV_CALL: the converter */
} Step;

typedef struct {
    PyObject_HEAD
    PyObject *wire_type;   /* str */
    PyObject *cls;         /* the message class */
    PyObject *literals;    /* tuple of bytes: one per step, then the tail */
    PyObject *steps;       /* the description's tuple (keeps descr and convert alive) */
    PyObject *constants;   /* tuple of (descriptor, value) */
    PyObject *extra_descr; /* the `extra` slot's descriptor */
    PyObject *extra_items; /* tuple of (key, step index or -1, constant) */
    PyObject *no_extra;    /* `extra` when extra_items is empty */
    PyObject *wrap;        /* callable(dict) -> ExtraFields */
    PyObject *decimals;    /* dict: the decimal cache, str -> Decimal */
    PyObject *decimal;     /* the Decimal type */
    Py_ssize_t cache_size; /* the cache is emptied when it holds this many */
    Py_ssize_t key_length; /* only strings this long or shorter are cached */
    Step *step;
    Py_ssize_t nsteps;
    Py_ssize_t *order;     /* the slots' steps in the order they are converted and set */
    Py_ssize_t norder;
    const char *tail;
    Py_ssize_t tail_len;
} Shape;

typedef struct {
    Py_ssize_t start;
    Py_ssize_t len;
    long long integer;
} Span;

static PyObject *empty_tuple;

static int
Shape_traverse(Shape *self, visitproc visit, void *arg)
{
    Py_VISIT(self->wire_type);
    Py_VISIT(self->cls);
    Py_VISIT(self->literals);
    Py_VISIT(self->steps);
    Py_VISIT(self->constants);
    Py_VISIT(self->extra_descr);
    Py_VISIT(self->extra_items);
    Py_VISIT(self->no_extra);
    Py_VISIT(self->wrap);
    Py_VISIT(self->decimals);
    Py_VISIT(self->decimal);
    return 0;
}

static int
Shape_clear(Shape *self)
{
    self->nsteps = 0; /* the steps point into the objects cleared below */
    self->norder = 0;
    self->tail_len = 0;
    Py_CLEAR(self->wire_type);
    Py_CLEAR(self->cls);
    Py_CLEAR(self->literals);
    Py_CLEAR(self->steps);
    Py_CLEAR(self->constants);
    Py_CLEAR(self->extra_descr);
    Py_CLEAR(self->extra_items);
    Py_CLEAR(self->no_extra);
    Py_CLEAR(self->wrap);
    Py_CLEAR(self->decimals);
    Py_CLEAR(self->decimal);
    return 0;
}

static void
Shape_dealloc(Shape *self)
{
    PyObject_GC_UnTrack(self);
    Shape_clear(self);
    PyMem_Free(self->step);
    self->step = NULL;
    PyMem_Free(self->order);
    self->order = NULL;
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
check_descriptor(PyObject *descr, const char *what)
{
    if (Py_TYPE(descr)->tp_descr_set == NULL) {
        PyErr_Format(PyExc_TypeError, "%s is not a data descriptor", what);
        return -1;
    }
    return 0;
}

/* Shape(wire_type, cls, steps, tail, constants, extra_descr, extra_items, no_extra,
 *       wrap, decimals, order=None)
 *
 * decimals: (cache: dict, Decimal, cache size, key length), as kalshi_ws._wire's
 * to_decimal keeps them.
 *
 * steps: a tuple of (literal: bytes, kind: int, target: int, conv: int,
 *        descr or None, convert or None)
 *
 * order: the index of each step whose target is a slot, once each, in the order the
 * Python parser converts and sets them (the class's field order, which a converter's
 * refusal and the decimal cache's emptying make visible); None: the frame's order.
 */
static int
Shape_init(Shape *self, PyObject *args, PyObject *kwargs)
{
    PyObject *wire_type, *cls, *steps, *tail, *constants, *extra_descr, *extra_items;
    PyObject *no_extra, *wrap, *decimals, *cache = NULL, *decimal = NULL, *order = NULL;
    Py_ssize_t cache_size, key_length;
    static char *names[] = {"wire_type", "cls", "steps", "tail", "constants",
                            "extra_descr", "extra_items", "no_extra", "wrap", "decimals",
                            "order", NULL};
    if (self->step != NULL) {
        PyErr_SetString(PyExc_TypeError, "a Shape is initialised once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "UO!O!SO!OO!OOO!|O:Shape", names, &wire_type, &PyType_Type, &cls,
            &PyTuple_Type, &steps, &tail, &PyTuple_Type, &constants, &extra_descr,
            &PyTuple_Type, &extra_items, &no_extra, &wrap, &PyTuple_Type, &decimals,
            &order)) {
        return -1;
    }
    if (!PyArg_ParseTuple(decimals, "O!Onn:decimals", &PyDict_Type, &cache, &decimal,
                          &cache_size, &key_length)) {
        return -1;
    }
    if (order == Py_None) {
        order = NULL;
    }
    if (order != NULL && !PyTuple_Check(order)) {
        PyErr_SetString(PyExc_TypeError, "order: a tuple of step indices, or None");
        return -1;
    }
    if (!PyType_Check(decimal) || cache_size < 1 || key_length < 0) {
        PyErr_SetString(PyExc_ValueError, "decimals: (dict, type, size >= 1, length >= 0)");
        return -1;
    }
    if (((PyTypeObject *)cls)->tp_new != PyBaseObject_Type.tp_new) {
        /* parse() makes the message as object.__new__(cls) does, without its check that
         * cls is made by object's tp_new: a dict or an exception made so would crash */
        PyErr_SetString(PyExc_TypeError, "cls: a class whose instances object.__new__ makes");
        return -1;
    }
    Py_ssize_t nsteps = PyTuple_GET_SIZE(steps);
    if (nsteps > MAX_STEPS) {
        PyErr_Format(PyExc_ValueError, "more than %d values", MAX_STEPS);
        return -1;
    }
    if (check_descriptor(extra_descr, "extra_descr") < 0) {
        return -1;
    }
    if (!PyCallable_Check(wrap)) {
        PyErr_SetString(PyExc_TypeError, "wrap is not callable");
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(constants); i++) {
        PyObject *item = PyTuple_GET_ITEM(constants, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2 ||
            check_descriptor(PyTuple_GET_ITEM(item, 0), "a constant's descriptor") < 0) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError, "constants: (descriptor, value) pairs");
            }
            return -1;
        }
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(extra_items); i++) {
        PyObject *item = PyTuple_GET_ITEM(extra_items, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 3 ||
            !PyUnicode_Check(PyTuple_GET_ITEM(item, 0)) ||
            !PyLong_Check(PyTuple_GET_ITEM(item, 1))) {
            PyErr_SetString(PyExc_TypeError, "extra_items: (key, step index, constant)");
            return -1;
        }
        Py_ssize_t index = PyLong_AsSsize_t(PyTuple_GET_ITEM(item, 1));
        if (index == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (index < -1 || index >= nsteps) {
            PyErr_SetString(PyExc_ValueError, "extra_items: step index out of range");
            return -1;
        }
    }
    Step *step = PyMem_Calloc(nsteps ? (size_t)nsteps : 1, sizeof(Step));
    Py_ssize_t *sequence = PyMem_Calloc(nsteps ? (size_t)nsteps : 1, sizeof(Py_ssize_t));
    Py_ssize_t nslots = 0;
    if (step == NULL || sequence == NULL) {
        PyMem_Free(step);
        PyMem_Free(sequence);
        PyErr_NoMemory();
        return -1;
    }
    PyObject *literals = PyTuple_New(nsteps + 1);
    if (literals == NULL) {
        PyMem_Free(step);
        PyMem_Free(sequence);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nsteps; i++) {
        PyObject *item = PyTuple_GET_ITEM(steps, i);
        PyObject *literal, *descr, *convert;
        int kind, target, conv;
        if (!PyTuple_Check(item) ||
            !PyArg_ParseTuple(item, "SiiiOO:step", &literal, &kind, &target, &conv,
                              &descr, &convert)) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError, "a step is a tuple");
            }
            goto fail;
        }
        if ((kind != KIND_STRING && kind != KIND_INTEGER) || target < TO_NOTHING ||
            target > TO_EXTRA || conv < CONV_NONE || conv > CONV_CALL ||
            (conv == CONV_DECIMAL && kind != KIND_STRING) ||
            ((target == TO_SID || target == TO_SEQ || target == TO_SENT) &&
             kind != KIND_INTEGER)) {
            PyErr_SetString(PyExc_ValueError, "a step's kind, target or conversion is invalid");
            goto fail;
        }
        if (target == TO_SLOT && check_descriptor(descr, "a slot's descriptor") < 0) {
            goto fail;
        }
        if (conv != CONV_NONE && (target != TO_SLOT || !PyCallable_Check(convert))) {
            PyErr_SetString(PyExc_TypeError, "a converted step needs a slot and a converter");
            goto fail;
        }
        Py_INCREF(literal);
        PyTuple_SET_ITEM(literals, i, literal);
        step[i].literal = PyBytes_AS_STRING(literal);
        step[i].literal_len = PyBytes_GET_SIZE(literal);
        step[i].kind = kind;
        step[i].target = target;
        step[i].conv = conv;
        step[i].descr = descr;
        step[i].convert = convert;
        if (target == TO_SLOT) {
            sequence[nslots++] = i; /* the frame's order, unless order says otherwise */
        }
    }
    if (order != NULL) {
        char seen[MAX_STEPS] = {0};
        if (PyTuple_GET_SIZE(order) != nslots) {
            PyErr_SetString(PyExc_ValueError, "order: each slot's step once");
            goto fail;
        }
        for (Py_ssize_t k = 0; k < nslots; k++) {
            PyObject *item = PyTuple_GET_ITEM(order, k);
            Py_ssize_t index = PyLong_Check(item) ? PyLong_AsSsize_t(item) : -1;
            if (index == -1 && PyErr_Occurred()) {
                goto fail;
            }
            if (index < 0 || index >= nsteps || step[index].target != TO_SLOT || seen[index]) {
                PyErr_SetString(PyExc_ValueError, "order: each slot's step once");
                goto fail;
            }
            seen[index] = 1;
            sequence[k] = index;
        }
    }
    Py_INCREF(tail);
    PyTuple_SET_ITEM(literals, nsteps, tail);

    Py_INCREF(wire_type);
    self->wire_type = wire_type;
    Py_INCREF(cls);
    self->cls = cls;
    self->literals = literals;
    Py_INCREF(steps);
    self->steps = steps;
    Py_INCREF(constants);
    self->constants = constants;
    Py_INCREF(extra_descr);
    self->extra_descr = extra_descr;
    Py_INCREF(extra_items);
    self->extra_items = extra_items;
    Py_INCREF(no_extra);
    self->no_extra = no_extra;
    Py_INCREF(wrap);
    self->wrap = wrap;
    Py_INCREF(cache);
    self->decimals = cache;
    Py_INCREF(decimal);
    self->decimal = decimal;
    self->cache_size = cache_size;
    self->key_length = key_length;
    self->step = step;
    self->nsteps = nsteps;
    self->order = sequence;
    self->norder = nslots;
    self->tail = PyBytes_AS_STRING(tail);
    self->tail_len = PyBytes_GET_SIZE(tail);
    return 0;

fail:
    Py_DECREF(literals);
    PyMem_Free(step);
    PyMem_Free(sequence);
    return -1;
}

/* Match the frame; fill spans. 1 on a match, 0 otherwise. No Python calls. */
static int
scan(const Shape *self, const char *text, Py_ssize_t size, Span *spans)
{
    const char *p = text;
    const char *end = text + size;
    for (Py_ssize_t i = 0; i < self->nsteps; i++) {
        const Step *s = &self->step[i];
        if (end - p < s->literal_len || memcmp(p, s->literal, (size_t)s->literal_len) != 0) {
            return 0;
        }
        p += s->literal_len;
        if (s->kind == KIND_STRING) {
            if (p >= end || *p != '"') {
                return 0;
            }
            const char *start = ++p;
            while (p < end) {
                unsigned char c = (unsigned char)*p;
                if (c == '"') {
                    break;
                }
                if (c == '\\' || c < 0x20) {
                    return 0;
                }
                p++;
            }
            if (p >= end) {
                return 0;
            }
            spans[i].start = start - text;
            spans[i].len = p - start;
            p++; /* the closing quote */
        }
        else {
            int negative = 0;
            long long value = 0;
            if (p < end && *p == '-') {
                negative = 1;
                p++;
            }
            if (p >= end) {
                return 0;
            }
            if (*p == '0') {
                p++;
            }
            else if (*p >= '1' && *p <= '9') {
                int digits = 0;
                while (p < end && *p >= '0' && *p <= '9' && digits < MAX_DIGITS) {
                    value = value * 10 + (*p - '0');
                    p++;
                    digits++;
                }
            }
            else {
                return 0;
            }
            spans[i].integer = negative ? -value : value;
        }
    }
    return end - p == self->tail_len &&
           memcmp(p, self->tail, (size_t)self->tail_len) == 0;
}

/* The raw value of step i: a new reference, or NULL with an exception set. */
static PyObject *
raw_value(const Step *s, const Span *span, const char *text)
{
    if (s->kind == KIND_INTEGER) {
        return PyLong_FromLongLong(span->integer);
    }
    return PyUnicode_DecodeUTF8(text + span->start, span->len, NULL);
}

/* Whether text is a plain decimal, -?[0-9]+(.[0-9]+)?, of at most max_len bytes: one
 * that to_decimal reads (Decimal(text), finite, in range, its grammar) and caches. */
static int
plain_decimal(const char *text, Py_ssize_t len, Py_ssize_t max_len)
{
    Py_ssize_t i = 0;
    if (len > max_len) {
        return 0;
    }
    if (i < len && text[i] == '-') {
        i++;
    }
    Py_ssize_t digits = i;
    while (i < len && text[i] >= '0' && text[i] <= '9') {
        i++;
    }
    if (i == digits) {
        return 0;
    }
    if (i < len && text[i] == '.') {
        Py_ssize_t fraction = ++i;
        while (i < len && text[i] >= '0' && text[i] <= '9') {
            i++;
        }
        if (i == fraction) {
            return 0;
        }
    }
    return i == len;
}

/* A decimal field's value: the cache's, else Decimal(value) for a plain decimal (which
 * is cached as to_decimal caches it), else the converter's. A new reference, or NULL. */
static PyObject *
read_decimal(Shape *self, const Step *s, const Span *span, const char *text, PyObject *value)
{
    PyObject *result = PyDict_GetItemWithError(self->decimals, value); /* borrowed */
    if (result != NULL) {
        Py_INCREF(result);
        return result;
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (!plain_decimal(text + span->start, span->len, self->key_length)) {
        return PyObject_CallOneArg(s->convert, value);
    }
    result = PyObject_CallOneArg(self->decimal, value);
    if (result == NULL) {
        return NULL;
    }
    if (PyDict_GET_SIZE(self->decimals) >= self->cache_size) {
        PyDict_Clear(self->decimals);
    }
    if (PyDict_SetItem(self->decimals, value, result) < 0) {
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

static int
set_slot(PyObject *descr, PyObject *obj, PyObject *value)
{
    return Py_TYPE(descr)->tp_descr_set(descr, obj, value);
}

static PyObject *
build(Shape *self, const char *text, const Span *spans)
{
    PyObject *values[MAX_STEPS]; /* each step's raw value (NULL: an integer nothing reads) */
    PyObject *header[3] = {NULL, NULL, NULL}; /* sid, seq, sent (borrowed from values) */
    PyObject *obj = NULL, *result = NULL;
    Py_ssize_t nsteps = self->nsteps;
    Py_ssize_t i;

    for (i = 0; i < nsteps; i++) {
        values[i] = NULL;
    }
    /* Every value's raw form first, every string decoded (no Python code runs here): the
     * Python parser decodes the whole frame before it converts a value, so a frame that
     * is not UTF-8 is refused before a converter can cache a decimal. */
    for (i = 0; i < nsteps; i++) {
        const Step *s = &self->step[i];
        if (s->kind == KIND_STRING || s->target != TO_NOTHING) {
            values[i] = raw_value(s, &spans[i], text);
            if (values[i] == NULL) {
                goto done;
            }
        }
        if (s->target == TO_SID || s->target == TO_SEQ || s->target == TO_SENT) {
            header[s->target - TO_SID] = values[i];
        }
    }
    obj = PyBaseObject_Type.tp_new((PyTypeObject *)self->cls, empty_tuple, NULL);
    if (obj == NULL) {
        goto done;
    }
    for (Py_ssize_t k = 0; k < self->norder; k++) { /* in the Python parser's order */
        i = self->order[k];
        const Step *s = &self->step[i];
        PyObject *converted;
        if (s->conv == CONV_NONE) {
            converted = values[i];
            Py_INCREF(converted);
        }
        else if (s->conv == CONV_DECIMAL) {
            converted = read_decimal(self, s, &spans[i], text, values[i]);
        }
        else {
            converted = PyObject_CallOneArg(s->convert, values[i]);
        }
        if (converted == NULL) {
            goto done;
        }
        int failed = set_slot(s->descr, obj, converted);
        Py_DECREF(converted);
        if (failed) {
            goto done;
        }
    }
    for (i = 0; i < PyTuple_GET_SIZE(self->constants); i++) {
        PyObject *pair = PyTuple_GET_ITEM(self->constants, i);
        if (set_slot(PyTuple_GET_ITEM(pair, 0), obj, PyTuple_GET_ITEM(pair, 1)) < 0) {
            goto done;
        }
    }
    if (PyTuple_GET_SIZE(self->extra_items) == 0) {
        if (set_slot(self->extra_descr, obj, self->no_extra) < 0) {
            goto done;
        }
    }
    else {
        PyObject *data = PyDict_New();
        if (data == NULL) {
            goto done;
        }
        for (i = 0; i < PyTuple_GET_SIZE(self->extra_items); i++) {
            PyObject *item = PyTuple_GET_ITEM(self->extra_items, i);
            Py_ssize_t index = PyLong_AsSsize_t(PyTuple_GET_ITEM(item, 1));
            PyObject *value = index < 0 ? PyTuple_GET_ITEM(item, 2)
                              : self->step[index].target == TO_EXTRA ? values[index] : NULL;
            if (value == NULL) {
                if (!PyErr_Occurred()) {
                    PyErr_SetString(PyExc_ValueError, "an extra item's step has no value");
                }
                Py_DECREF(data);
                goto done;
            }
            if (PyDict_SetItem(data, PyTuple_GET_ITEM(item, 0), value) < 0) {
                Py_DECREF(data);
                goto done;
            }
        }
        PyObject *extra = PyObject_CallOneArg(self->wrap, data);
        Py_DECREF(data);
        if (extra == NULL) {
            goto done;
        }
        int failed = set_slot(self->extra_descr, obj, extra);
        Py_DECREF(extra);
        if (failed) {
            goto done;
        }
    }
    if (header[0] == NULL) {
        PyErr_SetString(PyExc_ValueError, "the shape has no sid");
        goto done;
    }
    result = PyTuple_Pack(5, self->wire_type, header[0], header[1] ? header[1] : Py_None,
                          obj, header[2] ? header[2] : Py_None);

done:
    Py_XDECREF(obj);
    for (i = 0; i < nsteps; i++) {
        Py_XDECREF(values[i]);
    }
    return result;
}

static PyObject *
Shape_parse(Shape *self, PyObject *data)
{
    Span spans[MAX_STEPS];
    if (self->step == NULL) {
        PyErr_SetString(PyExc_TypeError, "the Shape is not initialised");
        return NULL;
    }
    if (!PyBytes_Check(data)) {
        Py_RETURN_NONE;
    }
    const char *text = PyBytes_AS_STRING(data);
    if (!scan(self, text, PyBytes_GET_SIZE(data), spans)) {
        Py_RETURN_NONE;
    }
    Py_INCREF(data); /* the spans point into it */
    PyObject *result = build(self, text, spans);
    Py_DECREF(data);
    if (result == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            return NULL; /* KeyboardInterrupt and the like propagate, as in Python */
        }
        PyErr_Clear(); /* a value its converter refuses: the general path */
        Py_RETURN_NONE;
    }
    return result;
}

static PyObject *
Shape_repr(Shape *self)
{
    return PyUnicode_FromFormat("<kalshi_ws._speedups.Shape of %R, %zd values>",
                                self->wire_type ? self->wire_type : Py_None, self->nsteps);
}

static PyMethodDef Shape_methods[] = {
    {"parse", (PyCFunction)Shape_parse, METH_O,
     "parse(data: bytes) -> (type, sid, seq, message, sending_ts_ms) | None\n\n"
     "Read a frame's bytes by this shape; None when it does not match, a string is not\n"
     "valid UTF-8, or a converter refuses a value."},
    {NULL, NULL, 0, NULL}};

static PyTypeObject ShapeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kalshi_ws._speedups.Shape",
    .tp_doc = "One learned frame shape, read in C (see kalshi_ws._shapes).",
    .tp_basicsize = sizeof(Shape),
    .tp_itemsize = 0,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Shape_init,
    .tp_dealloc = (destructor)Shape_dealloc,
    .tp_traverse = (traverseproc)Shape_traverse,
    .tp_clear = (inquiry)Shape_clear,
    .tp_repr = (reprfunc)Shape_repr,
    .tp_methods = Shape_methods,
};

/* ------------------------------------------------------------------ ShapeTable
 *
 * The learned shapes of one decoder, by message type: parse() finds the frame's type
 * after '{"type":"' and tries that type's shapes, the newest first. A few types at
 * most, so a scan with memcmp (no key object to make and hash).
 */

#define PREFIX "{\"type\":\""
#define PREFIX_LEN 9

typedef struct {
    PyObject_HEAD
    PyObject *types;  /* list of bytes: the types */
    PyObject *shapes; /* list of tuples of Shape: each type's shapes, newest first */
} ShapeTable;

static int
ShapeTable_traverse(ShapeTable *self, visitproc visit, void *arg)
{
    Py_VISIT(self->types);
    Py_VISIT(self->shapes);
    return 0;
}

static int
ShapeTable_clear(ShapeTable *self)
{
    Py_CLEAR(self->types);
    Py_CLEAR(self->shapes);
    return 0;
}

static void
ShapeTable_dealloc(ShapeTable *self)
{
    PyObject_GC_UnTrack(self);
    ShapeTable_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
ShapeTable_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if ((args != NULL && PyTuple_GET_SIZE(args) != 0) ||
        (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0)) {
        PyErr_SetString(PyExc_TypeError, "ShapeTable() takes no arguments");
        return NULL;
    }
    ShapeTable *self = (ShapeTable *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->types = PyList_New(0);
    self->shapes = PyList_New(0);
    if (self->types == NULL || self->shapes == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

/* set(wire_type: bytes, shapes: tuple of Shape): the type's shapes from now on. */
static PyObject *
ShapeTable_set(ShapeTable *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyBytes_Check(args[0]) || !PyTuple_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "set(wire_type: bytes, shapes: tuple of Shape)");
        return NULL;
    }
    PyObject *wire_type = args[0], *shapes = args[1];
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(shapes); i++) {
        PyObject *shape = PyTuple_GET_ITEM(shapes, i);
        if (!PyObject_TypeCheck(shape, &ShapeType) || ((Shape *)shape)->step == NULL) {
            PyErr_SetString(PyExc_TypeError, "shapes: a tuple of initialised Shape objects");
            return NULL;
        }
    }
    if (memchr(PyBytes_AS_STRING(wire_type), '"', (size_t)PyBytes_GET_SIZE(wire_type))) {
        PyErr_SetString(PyExc_ValueError, "a type has no quote");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(self->types); i++) {
        int same = PyObject_RichCompareBool(PyList_GET_ITEM(self->types, i), wire_type, Py_EQ);
        if (same < 0) {
            return NULL;
        }
        if (same) {
            Py_INCREF(shapes);
            if (PyList_SetItem(self->shapes, i, shapes) < 0) { /* steals */
                return NULL;
            }
            Py_RETURN_NONE;
        }
    }
    if (PyList_Append(self->types, wire_type) < 0) {
        return NULL;
    }
    if (PyList_Append(self->shapes, shapes) < 0) {
        PyList_SetSlice(self->types, PyList_GET_SIZE(self->types) - 1,
                        PyList_GET_SIZE(self->types), NULL);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
ShapeTable_parse(ShapeTable *self, PyObject *data)
{
    if (!PyBytes_Check(data)) {
        Py_RETURN_NONE;
    }
    const char *text = PyBytes_AS_STRING(data);
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    if (size < PREFIX_LEN || memcmp(text, PREFIX, PREFIX_LEN) != 0) {
        Py_RETURN_NONE;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(self->types); i++) {
        PyObject *wire_type = PyList_GET_ITEM(self->types, i);
        Py_ssize_t len = PyBytes_GET_SIZE(wire_type);
        if (size - PREFIX_LEN <= len || text[PREFIX_LEN + len] != '"' ||
            memcmp(text + PREFIX_LEN, PyBytes_AS_STRING(wire_type), (size_t)len) != 0) {
            continue;
        }
        PyObject *shapes = PyList_GET_ITEM(self->shapes, i);
        Py_INCREF(shapes); /* a converter's code cannot change the table under us */
        for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(shapes); j++) {
            PyObject *result = Shape_parse((Shape *)PyTuple_GET_ITEM(shapes, j), data);
            if (result != Py_None) {
                Py_DECREF(shapes);
                return result; /* a message, or NULL with a non-Exception raised */
            }
            Py_DECREF(result);
        }
        Py_DECREF(shapes);
        Py_RETURN_NONE;
    }
    Py_RETURN_NONE;
}

static PyMethodDef ShapeTable_methods[] = {
    {"parse", (PyCFunction)ShapeTable_parse, METH_O,
     "parse(data: bytes) -> (type, sid, seq, message, sending_ts_ms) | None\n\n"
     "Read a frame's bytes by the shapes of its type, the newest first."},
    {"set", (PyCFunction)(void (*)(void))ShapeTable_set, METH_FASTCALL,
     "set(wire_type: bytes, shapes: tuple[Shape, ...]) -> None\n\n"
     "Replace the shapes of a type (the newest first)."},
    {NULL, NULL, 0, NULL}};

static PyTypeObject ShapeTableType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kalshi_ws._speedups.ShapeTable",
    .tp_doc = "The learned shapes of one decoder, by message type.",
    .tp_basicsize = sizeof(ShapeTable),
    .tp_itemsize = 0,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = ShapeTable_new,
    .tp_dealloc = (destructor)ShapeTable_dealloc,
    .tp_traverse = (traverseproc)ShapeTable_traverse,
    .tp_clear = (inquiry)ShapeTable_clear,
    .tp_methods = ShapeTable_methods,
};

/* ------------------------------------------------------------------ Constructor
 *
 * Constructor(cls, descriptors): a positional constructor of a frozen slotted attrs
 * class that skips __init__, as kalshi_ws._wire.constructor generates one in Python:
 * object.__new__(cls), then each argument through its slot's descriptor, in order.
 */

typedef struct {
    PyObject_HEAD
    PyObject *cls;
    PyObject *descriptors; /* tuple: one data descriptor per positional argument */
    vectorcallfunc vectorcall;
} Constructor;

static int
Constructor_traverse(Constructor *self, visitproc visit, void *arg)
{
    Py_VISIT(self->cls);
    Py_VISIT(self->descriptors);
    return 0;
}

static int
Constructor_clear(Constructor *self)
{
    Py_CLEAR(self->cls);
    Py_CLEAR(self->descriptors);
    return 0;
}

static void
Constructor_dealloc(Constructor *self)
{
    PyObject_GC_UnTrack(self);
    Constructor_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Constructor_vectorcall(Constructor *self, PyObject *const *args, size_t nargsf,
                       PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (self->descriptors == NULL) {
        PyErr_SetString(PyExc_TypeError, "the Constructor is not initialised");
        return NULL;
    }
    Py_ssize_t wanted = PyTuple_GET_SIZE(self->descriptors);
    if ((kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0) || nargs != wanted) {
        PyErr_Format(PyExc_TypeError, "%R() takes %zd positional arguments", self->cls,
                     wanted);
        return NULL;
    }
    PyObject *obj = PyBaseObject_Type.tp_new((PyTypeObject *)self->cls, empty_tuple, NULL);
    if (obj == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < wanted; i++) {
        if (set_slot(PyTuple_GET_ITEM(self->descriptors, i), obj, args[i]) < 0) {
            Py_DECREF(obj);
            return NULL;
        }
    }
    return obj;
}

static PyObject *
Constructor_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *cls, *descriptors;
    static char *names[] = {"cls", "descriptors", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!:Constructor", names, &PyType_Type,
                                     &cls, &PyTuple_Type, &descriptors)) {
        return NULL;
    }
    if (((PyTypeObject *)cls)->tp_new != PyBaseObject_Type.tp_new) {
        PyErr_SetString(PyExc_TypeError, "cls: a class whose instances object.__new__ makes");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(descriptors); i++) {
        if (check_descriptor(PyTuple_GET_ITEM(descriptors, i), "a descriptor") < 0) {
            return NULL;
        }
    }
    Constructor *self = (Constructor *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    Py_INCREF(cls);
    self->cls = cls;
    Py_INCREF(descriptors);
    self->descriptors = descriptors;
    self->vectorcall = (vectorcallfunc)Constructor_vectorcall;
    return (PyObject *)self;
}

static PyObject *
Constructor_repr(Constructor *self)
{
    return PyUnicode_FromFormat("<kalshi_ws._speedups.Constructor of %R>",
                                self->cls ? self->cls : Py_None);
}

static PyTypeObject ConstructorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kalshi_ws._speedups.Constructor",
    .tp_doc = "A positional constructor of a frozen slotted class that skips __init__.",
    .tp_basicsize = sizeof(Constructor),
    .tp_itemsize = 0,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = Constructor_new,
    .tp_dealloc = (destructor)Constructor_dealloc,
    .tp_traverse = (traverseproc)Constructor_traverse,
    .tp_clear = (inquiry)Constructor_clear,
    .tp_repr = (reprfunc)Constructor_repr,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Constructor, vectorcall),
};

/* ------------------------------------------------------------------ framing
 *
 * split_data(buffer, frames, max_size) -> int
 *
 * The common case of kalshi_ws._transport.Transport._split: from the start of buffer,
 * append (opcode, payload) to frames for each whole frame that is a final, unmasked
 * text or binary frame without reserved bits and of at most max_size bytes (max_size
 * None: no limit; any int, as the Python loop reads it: one past 64 bits limits
 * nothing a buffer can hold, one below 0 refuses every data frame). Stop at the first
 * frame that is anything else, or not whole, and return its offset: the Python loop
 * takes it from there, with all its rules and errors. Called only while no fragmented
 * message is in progress.
 */

static PyObject *opcodes[3]; /* 0, 1 (text), 2 (binary) as ints */

static PyObject *
split_data(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyBytes_Check(args[0]) || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "split_data(buffer: bytes, frames: list, max_size)");
        return NULL;
    }
    long long max_size = -1; /* no limit */
    if (args[2] != Py_None) {
        int overflow;
        max_size = PyLong_AsLongLongAndOverflow(args[2], &overflow);
        if (max_size == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (overflow > 0) {
            max_size = -1; /* more than any buffer holds */
        }
        else if (overflow < 0 || max_size < 0) {
            return PyLong_FromLong(0); /* every data frame is too big: the Python loop says so */
        }
    }
    const unsigned char *buffer = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    PyObject *frames = args[1];
    Py_ssize_t pos = 0;
    while (size - pos >= 2) {
        unsigned char b0 = buffer[pos], b1 = buffer[pos + 1];
        int opcode = b0 & 0x0F;
        if (!(b0 & 0x80) || (b0 & 0x70) || (b1 & 0x80) || (opcode != 1 && opcode != 2)) {
            break; /* a fragment, reserved bits, a masked frame, a control frame */
        }
        unsigned long long length = b1 & 0x7F;
        Py_ssize_t start = pos + 2;
        if (length == 126) {
            if (size - pos < 4) {
                break;
            }
            length = ((unsigned long long)buffer[pos + 2] << 8) | buffer[pos + 3];
            start += 2;
        }
        else if (length == 127) {
            if (size - pos < 10) {
                break;
            }
            length = 0;
            for (int i = 0; i < 8; i++) {
                length = (length << 8) | buffer[pos + 2 + i];
            }
            start += 8;
        }
        if ((max_size >= 0 && length > (unsigned long long)max_size) ||
            length > (unsigned long long)(size - start)) {
            break; /* too big (the Python loop refuses it), or not whole yet */
        }
        PyObject *payload = PyBytes_FromStringAndSize((const char *)buffer + start,
                                                      (Py_ssize_t)length);
        if (payload == NULL) {
            return NULL;
        }
        PyObject *frame = PyTuple_Pack(2, opcodes[opcode], payload);
        Py_DECREF(payload);
        if (frame == NULL) {
            return NULL;
        }
        int failed = PyList_Append(frames, frame);
        Py_DECREF(frame);
        if (failed) {
            return NULL;
        }
        pos = start + (Py_ssize_t)length;
    }
    return PyLong_FromSsize_t(pos);
}

/* ladder(pairs, cache, level): _wire._ladder for a list, with the same results.
 *
 * Each [price, size] pair (a list of two str) whose strings are both in the decimal
 * cache becomes (cached price, cached size); any other element becomes level(element),
 * the Python converter, which converts (and caches) as to_decimal does or raises. The
 * cache is only read here, so every conversion and every change to the cache happens
 * in Python, in the order the Python loop makes them.
 */
static PyObject *
ladder(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "ladder(pairs, cache, level) takes 3 arguments");
        return NULL;
    }
    PyObject *pairs = args[0], *cache = args[1], *level = args[2];
    if (!PyList_CheckExact(pairs) || !PyDict_CheckExact(cache)) {
        PyErr_SetString(PyExc_TypeError, "ladder() needs a list and a dict");
        return NULL;
    }
    PyObject *levels = PyList_New(0);
    if (levels == NULL) {
        return NULL;
    }
    /* As a for loop over a list: the length is read again at each step. */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(pairs); i++) {
        PyObject *pair = PyList_GET_ITEM(pairs, i);
        PyObject *item = NULL;
        Py_INCREF(pair);
        if (PyList_CheckExact(pair) && PyList_GET_SIZE(pair) == 2) {
            /* A lookup runs no Python code while the cache holds only str keys; a
             * key of another type may run its __eq__, which may empty the pair or
             * drop the price found first: the strings and the values are held, as
             * the Python loop's locals hold them. Both strings are looked up, as the
             * Python loop looks them up, before level is asked. */
            PyObject *price_text = Py_NewRef(PyList_GET_ITEM(pair, 0));
            PyObject *size_text = Py_NewRef(PyList_GET_ITEM(pair, 1));
            PyObject *price = NULL, *size = NULL;
            if (PyUnicode_CheckExact(price_text)) {
                price = Py_XNewRef(PyDict_GetItemWithError(cache, price_text));
            }
            if ((price != NULL || !PyErr_Occurred()) && PyUnicode_CheckExact(size_text)) {
                /* held too: making the tuple may collect garbage, and a finalizer may
                 * empty the cache */
                size = Py_XNewRef(PyDict_GetItemWithError(cache, size_text));
            }
            /* None, as the Python loop's .get() gives it, is not cached. */
            if (!PyErr_Occurred() && price != NULL && price != Py_None && size != NULL
                    && size != Py_None) {
                item = PyTuple_Pack(2, price, size);
            }
            Py_XDECREF(price); /* then the strings: the last reference may run __del__ */
            Py_XDECREF(size);
            Py_DECREF(price_text);
            Py_DECREF(size_text);
            if (PyErr_Occurred()) {
                Py_XDECREF(item);
                Py_DECREF(pair);
                Py_DECREF(levels);
                return NULL;
            }
        }
        if (item == NULL) {
            item = PyObject_CallOneArg(level, pair);
            if (item == NULL) {
                Py_DECREF(pair);
                Py_DECREF(levels);
                return NULL;
            }
        }
        Py_DECREF(pair);
        int failed = PyList_Append(levels, item);
        Py_DECREF(item);
        if (failed) {
            Py_DECREF(levels);
            return NULL;
        }
    }
    PyObject *result = PyList_AsTuple(levels);
    Py_DECREF(levels);
    return result;
}

/* split_ladder(zero, one, infinity, levels): orderbook._load_side's fast case.
 *
 * For a tuple of (price, size) tuples of Decimals with prices rising strictly inside
 * (zero, one) and sizes positive and finite (as Kalshi sends a side), return the
 * tuple of its prices and the tuple of its sizes; otherwise None, and the Python
 * checks that follow say what is wrong. A comparison that raises an Exception (a NaN)
 * gives None too, as the Python check it replaces does. A size is finite when, being
 * positive, it is below infinity.
 */
static PyObject *
split_ladder(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError,
                        "split_ladder(zero, one, infinity, levels) takes 4 arguments");
        return NULL;
    }
    PyObject *zero = args[0], *one = args[1], *infinity = args[2], *levels = args[3];
    if (!PyTuple_CheckExact(levels)) {
        Py_RETURN_NONE;
    }
    PyTypeObject *decimal_type = Py_TYPE(zero);
    Py_ssize_t count = PyTuple_GET_SIZE(levels);
    PyObject *prices = PyTuple_New(count);
    PyObject *sizes = PyTuple_New(count);
    if (prices == NULL || sizes == NULL) {
        Py_XDECREF(prices);
        Py_XDECREF(sizes);
        return NULL;
    }
    PyObject *previous = zero; /* borrowed: levels and zero hold it */
    int ladder = 1;
    for (Py_ssize_t i = 0; i < count && ladder == 1; i++) {
        PyObject *level = PyTuple_GET_ITEM(levels, i);
        if (!PyTuple_CheckExact(level) || PyTuple_GET_SIZE(level) != 2) {
            ladder = 0;
            break;
        }
        PyObject *price = PyTuple_GET_ITEM(level, 0);
        PyObject *size = PyTuple_GET_ITEM(level, 1);
        if (Py_TYPE(price) != decimal_type || Py_TYPE(size) != decimal_type) {
            ladder = 0;
            break;
        }
        ladder = PyObject_RichCompareBool(previous, price, Py_LT);
        if (ladder == 1) {
            ladder = PyObject_RichCompareBool(size, zero, Py_GT);
        }
        if (ladder == 1) {
            ladder = PyObject_RichCompareBool(size, infinity, Py_LT);
        }
        if (ladder == 1) {
            Py_INCREF(price);
            PyTuple_SET_ITEM(prices, i, price);
            Py_INCREF(size);
            PyTuple_SET_ITEM(sizes, i, size);
            previous = price;
        }
    }
    if (ladder == 1) {
        ladder = PyObject_RichCompareBool(previous, one, Py_LT);
    }
    if (ladder == 1) {
        PyObject *side = PyTuple_Pack(2, prices, sizes);
        Py_DECREF(prices);
        Py_DECREF(sizes);
        return side;
    }
    Py_DECREF(prices); /* unset items are NULL, which a tuple's dealloc skips */
    Py_DECREF(sizes);
    if (ladder < 0) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            return NULL; /* e.g. KeyboardInterrupt: as in Python, not swallowed */
        }
        PyErr_Clear();
    }
    Py_RETURN_NONE;
}

/* ----------------------------------------------------------- an order book's side */

/* bisect.bisect_left(prices, price) on a tuple, making the same comparisons. */
static Py_ssize_t
bisect_left_of(PyObject *prices, PyObject *price)
{
    Py_ssize_t lo = 0, hi = PyTuple_GET_SIZE(prices);
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        int less = PyObject_RichCompareBool(PyTuple_GET_ITEM(prices, mid), price, Py_LT);
        if (less < 0) {
            return -1;
        }
        if (less) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    return lo;
}

/* A new tuple: `items` with `value` put in at `index` (insert), or at index replaced
 * (replace), or the item at `index` left out (value NULL). */
static PyObject *
tuple_changed(PyObject *items, Py_ssize_t index, PyObject *value, int replace)
{
    Py_ssize_t count = PyTuple_GET_SIZE(items);
    Py_ssize_t size = value == NULL ? count - 1 : (replace ? count : count + 1);
    PyObject *result = PyTuple_New(size);
    if (result == NULL) {
        return NULL;
    }
    Py_ssize_t to = 0;
    for (Py_ssize_t from = 0; from < count; from++) {
        if (from == index) {
            if (value != NULL) {
                Py_INCREF(value);
                PyTuple_SET_ITEM(result, to++, value);
            }
            if (value == NULL || replace) {
                continue;
            }
        }
        PyObject *item = PyTuple_GET_ITEM(items, from);
        Py_INCREF(item);
        PyTuple_SET_ITEM(result, to++, item);
    }
    if (to < size) { /* insert at the end */
        Py_INCREF(value);
        PyTuple_SET_ITEM(result, to, value);
    }
    return result;
}

/* (prices, sizes) as a new pair, taking the references given (NULL: failed). */
static PyObject *
side_pair(PyObject *prices, PyObject *sizes)
{
    if (prices == NULL || sizes == NULL) {
        Py_XDECREF(prices);
        Py_XDECREF(sizes);
        return NULL;
    }
    PyObject *pair = PyTuple_Pack(2, prices, sizes);
    Py_DECREF(prices);
    Py_DECREF(sizes);
    return pair;
}

/* Whether zero < price < one; -1 on error. */
static int
inside(PyObject *zero, PyObject *price, PyObject *one)
{
    int above = PyObject_RichCompareBool(zero, price, Py_LT);
    if (above != 1) {
        return above;
    }
    return PyObject_RichCompareBool(price, one, Py_LT);
}

/* Whether a == b as Python's `==` says it (-1 on error): __eq__ is asked even for the
 * same object, as a NaN is not equal to itself (PyObject_RichCompareBool says it is). */
static int
equal(PyObject *a, PyObject *b)
{
    PyObject *result = PyObject_RichCompare(a, b, Py_EQ);
    if (result == NULL) {
        return -1;
    }
    int truth = PyObject_IsTrue(result);
    Py_DECREF(result);
    return truth;
}

/* Raise bad_price(price). */
static PyObject *
raise_bad_price(PyObject *bad_price, PyObject *price)
{
    PyObject *error = PyObject_CallOneArg(bad_price, price);
    if (error != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(error), error);
        Py_DECREF(error);
    }
    return NULL;
}

/* A change at a price with no level: 1 when it makes a level (a positive delta at a
 * price strictly between 0 and 1), 0 when it is ignored (a delta of zero or below), -1
 * with an exception set (bad_price's error for a price outside, or a comparison that
 * failed). The same checks, in the same order, as orderbook._changed_side. */
static int
new_level(PyObject *zero, PyObject *one, PyObject *bad_price, PyObject *price,
          PyObject *delta)
{
    int positive = PyObject_RichCompareBool(delta, zero, Py_GT);
    if (positive <= 0) {
        return positive;
    }
    int ok = inside(zero, price, one);
    if (ok < 0) {
        return -1;
    }
    if (!ok) {
        raise_bad_price(bad_price, price);
        return -1;
    }
    return 1;
}

/* changed_side(zero, one, add, bad_price, edits_before_dict,
 *              prices, sizes, price, delta, edits):
 * orderbook._changed_side, with the same results, comparisons and errors. */
static PyObject *
changed_side(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "changed_side() takes 10 arguments");
        return NULL;
    }
    PyObject *zero = args[0], *one = args[1], *add = args[2], *bad_price = args[3];
    PyObject *prices = args[5], *sizes = args[6], *price = args[7], *delta = args[8];
    /* edits >= edits_before_dict, compared first as Python compares it (any int). */
    int many_edits = PyObject_RichCompareBool(args[9], args[4], Py_GE);
    if (many_edits < 0) {
        return NULL;
    }
    if (!PyTuple_CheckExact(prices) || !(PyTuple_CheckExact(sizes) || PyDict_CheckExact(sizes))) {
        PyErr_SetString(PyExc_TypeError, "changed_side() needs a tuple and a tuple or dict");
        return NULL;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(prices);
    PyObject *owned = NULL; /* a dict made here from the tuples */
    if (many_edits && PyTuple_CheckExact(sizes)) {
        owned = PyDict_New();
        if (owned == NULL) {
            return NULL;
        }
        Py_ssize_t pairs = Py_MIN(count, PyTuple_GET_SIZE(sizes)); /* as zip() */
        for (Py_ssize_t i = 0; i < pairs; i++) {
            if (PyDict_SetItem(owned, PyTuple_GET_ITEM(prices, i),
                               PyTuple_GET_ITEM(sizes, i)) < 0) {
                Py_DECREF(owned);
                return NULL;
            }
        }
        sizes = owned;
    }
    PyObject *result = NULL;
    if (PyDict_CheckExact(sizes)) {
        PyObject *size = PyDict_GetItemWithError(sizes, price);
        if (size == NULL && PyErr_Occurred()) {
            goto done;
        }
        if (size == NULL || size == Py_None) { /* as .get() gives it */
            int made = new_level(zero, one, bad_price, price, delta);
            if (made < 0) {
                goto done;
            }
            if (!made) {
                result = Py_NewRef(Py_None);
                goto done;
            }
            if (PyDict_SetItem(sizes, price, delta) < 0) {
                goto done;
            }
            Py_ssize_t index = count;
            if (count) {
                int after = PyObject_RichCompareBool(PyTuple_GET_ITEM(prices, count - 1),
                                                     price, Py_LT);
                if (after < 0) {
                    goto done;
                }
                if (!after) {
                    index = bisect_left_of(prices, price);
                    if (index < 0) {
                        goto done;
                    }
                }
            }
            result = side_pair(tuple_changed(prices, index, price, 0), Py_NewRef(sizes));
            goto done;
        }
        PyObject *operands[2] = {Py_NewRef(size), delta};
        PyObject *total = PyObject_Vectorcall(add, operands, 2, NULL);
        Py_DECREF(operands[0]);
        if (total == NULL) {
            goto done;
        }
        int positive = PyObject_RichCompareBool(total, zero, Py_GT);
        if (positive < 0) {
            Py_DECREF(total);
            goto done;
        }
        if (positive) {
            int failed = PyDict_SetItem(sizes, price, total);
            Py_DECREF(total);
            if (!failed) {
                result = side_pair(Py_NewRef(prices), Py_NewRef(sizes));
            }
            goto done;
        }
        Py_DECREF(total);
        if (PyDict_DelItem(sizes, price) < 0) {
            goto done;
        }
        if (count == 0) { /* as prices[-1] */
            PyErr_SetString(PyExc_IndexError, "tuple index out of range");
            goto done;
        }
        int last = equal(PyTuple_GET_ITEM(prices, count - 1), price);
        if (last < 0) {
            goto done;
        }
        Py_ssize_t index = count - 1;
        if (!last) {
            index = bisect_left_of(prices, price);
            if (index < 0) {
                goto done;
            }
        }
        PyObject *fewer = index < count ? tuple_changed(prices, index, NULL, 0)
                                        : Py_NewRef(prices);
        result = side_pair(fewer, Py_NewRef(sizes));
        goto done;
    }
    Py_ssize_t index = bisect_left_of(prices, price);
    if (index < 0) {
        goto done;
    }
    if (index < count) {
        int same = equal(PyTuple_GET_ITEM(prices, index), price);
        if (same < 0) {
            goto done;
        }
        if (same) {
            if (index >= PyTuple_GET_SIZE(sizes)) {
                PyErr_SetString(PyExc_IndexError, "tuple index out of range");
                goto done;
            }
            PyObject *operands[2] = {PyTuple_GET_ITEM(sizes, index), delta};
            PyObject *total = PyObject_Vectorcall(add, operands, 2, NULL);
            if (total == NULL) {
                goto done;
            }
            int positive = PyObject_RichCompareBool(total, zero, Py_GT);
            if (positive < 0) {
                Py_DECREF(total);
                goto done;
            }
            if (positive) {
                result = side_pair(Py_NewRef(prices), tuple_changed(sizes, index, total, 1));
            }
            else {
                result = side_pair(tuple_changed(prices, index, NULL, 0),
                                   tuple_changed(sizes, index, NULL, 0));
            }
            Py_DECREF(total);
            goto done;
        }
    }
    int made = new_level(zero, one, bad_price, price, delta);
    if (made < 0) {
        goto done;
    }
    if (!made) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    result = side_pair(tuple_changed(prices, index, price, 0),
                       tuple_changed(sizes, index, delta, 0));
done:
    Py_XDECREF(owned);
    return result;
}

static PyMethodDef module_methods[] = {
    {"split_data", (PyCFunction)(void (*)(void))split_data, METH_FASTCALL,
     "split_data(buffer: bytes, frames: list, max_size: int | None) -> int\n\n"
     "Append the leading whole, final, unmasked text and binary frames of buffer (each\n"
     "of at most max_size bytes; None: no limit) to frames as (opcode, payload); return\n"
     "the offset of the first frame left for the Python loop."},
    {"ladder", (PyCFunction)(void (*)(void))ladder, METH_FASTCALL,
     "ladder(pairs: list, cache: dict, level) -> tuple\n\n"
     "An order-book side as _wire._ladder reads a list: each pair of two cached\n"
     "strings as (price, size) from the cache, any other element as level(element)."},
    {"split_ladder", (PyCFunction)(void (*)(void))split_ladder, METH_FASTCALL,
     "split_ladder(zero, one, infinity, levels: tuple) -> (prices, sizes) | None\n\n"
     "An order-book side as Kalshi sends it (Decimal prices rising strictly inside\n"
     "(zero, one), sizes positive and finite) as its prices and its sizes; None for\n"
     "anything else."},
    {"changed_side", (PyCFunction)(void (*)(void))changed_side, METH_FASTCALL,
     "changed_side(zero, one, add, bad_price, edits_before_dict, prices, sizes, price,\n"
     "             delta, edits) -> (prices, sizes) | None\n\n"
     "orderbook._changed_side: one side of a book after adding delta at price."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "kalshi_ws._speedups",
    .m_doc = "The learned shapes' parser in C (optional; see kalshi_ws._shapes).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (PyType_Ready(&ShapeType) < 0 || PyType_Ready(&ShapeTableType) < 0 ||
        PyType_Ready(&ConstructorType) < 0) {
        return NULL;
    }
    empty_tuple = PyTuple_New(0);
    if (empty_tuple == NULL) {
        return NULL;
    }
    for (int i = 0; i < 3; i++) {
        opcodes[i] = PyLong_FromLong(i);
        if (opcodes[i] == NULL) {
            return NULL;
        }
    }
    PyObject *module = PyModule_Create(&speedups_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&ShapeType);
    if (PyModule_AddObject(module, "Shape", (PyObject *)&ShapeType) < 0) {
        Py_DECREF(&ShapeType);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&ConstructorType);
    if (PyModule_AddObject(module, "Constructor", (PyObject *)&ConstructorType) < 0) {
        Py_DECREF(&ConstructorType);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&ShapeTableType);
    if (PyModule_AddObject(module, "ShapeTable", (PyObject *)&ShapeTableType) < 0) {
        Py_DECREF(&ShapeTableType);
        Py_DECREF(module);
        return NULL;
    }
    /* The interface version kalshi_ws/_compiled.py checks: raise it with any change
     * to a function's arguments or results, or a new function the Python code uses. */
    if (PyModule_AddIntConstant(module, "API_VERSION", API_VERSION) < 0 ||
        PyModule_AddIntConstant(module, "KIND_STRING", KIND_STRING) < 0 ||
        PyModule_AddIntConstant(module, "KIND_INTEGER", KIND_INTEGER) < 0 ||
        PyModule_AddIntConstant(module, "TO_NOTHING", TO_NOTHING) < 0 ||
        PyModule_AddIntConstant(module, "TO_SID", TO_SID) < 0 ||
        PyModule_AddIntConstant(module, "TO_SEQ", TO_SEQ) < 0 ||
        PyModule_AddIntConstant(module, "TO_SENT", TO_SENT) < 0 ||
        PyModule_AddIntConstant(module, "TO_SLOT", TO_SLOT) < 0 ||
        PyModule_AddIntConstant(module, "TO_EXTRA", TO_EXTRA) < 0 ||
        PyModule_AddIntConstant(module, "CONV_NONE", CONV_NONE) < 0 ||
        PyModule_AddIntConstant(module, "CONV_DECIMAL", CONV_DECIMAL) < 0 ||
        PyModule_AddIntConstant(module, "CONV_CALL", CONV_CALL) < 0 ||
        PyModule_AddIntConstant(module, "MAX_STEPS", MAX_STEPS) < 0 ||
        /* Which C code this module was built from: _compiled.py uses no other. */
        PyModule_AddStringConstant(module, "SOURCE_DIGEST", SOURCE_DIGEST) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
