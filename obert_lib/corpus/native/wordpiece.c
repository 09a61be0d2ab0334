/*
 * obert_lib.corpus._wordpiece: BERT WordPiece tokenisation (Devlin et al. 2019) in one C call.
 *
 * Reproduces the huggingface `tokenizers` pipeline used by the corpus stage, token ids and
 * original-text code-point offsets alike:
 *   added tokens  non-normalized added tokens (e.g. [MASK]) are cut out of the original text first,
 *                 leftmost-longest, and the pieces between them are tokenised independently;
 *   BertNormalizer  per character: drop, map to a space, pad CJK with spaces, lower-case;
 *   BertPreTokenizer  split on whitespace, isolate punctuation;
 *   WordPiece     greedy longest match with the continuation prefix ("##"); a word with more than
 *                 max_input_chars_per_word characters, or with a piece that matches nothing, is one
 *                 unknown token covering the word.
 *
 * The per-character behaviour is not coded here: obert_lib/corpus/wordpiece.py probes the backend's
 * own normalizer and pre-tokenizer once for every BMP code point and passes two tables (class and
 * lower-cased character, see CLASS_* below). encode() returns None for any text it cannot reproduce
 * exactly (a code point outside the BMP, a character whose normalisation is not one character, a
 * missing unknown token), and the wrapper then asks the backend.
 *
 * Characters are read through the PEP 393 kind/data of the str, so offsets are code points.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define BMP 0x10000

/* Character classes (wordpiece.py builds the table with the same numbers). */
enum {
    CLASS_WORD = 0,    /* normalises to one non-space, non-punctuation char: part of a word */
    CLASS_SPACE = 1,   /* normalises to whitespace: ends a word */
    CLASS_DROP = 2,    /* removed by clean_text (NUL, U+FFFD, control chars); does not end a word */
    CLASS_ISOLATE = 3, /* punctuation or padded CJK char: a word of its own */
    CLASS_COMPLEX = 4, /* anything else (e.g. lower-cases to two chars, surrogates): not handled */
    N_CLASSES = 5
};

/* Open-addressing hash over the vocab's UTF-8 keys; id < 0 marks an empty slot. */
typedef struct {
    uint32_t check; /* high half of the 64-bit hash */
    uint32_t off;   /* key offset in pool */
    uint32_t len;   /* key length in bytes */
    int32_t id;
} Slot;

typedef struct {
    Py_UCS4 *chars;
    Py_ssize_t len;
    int32_t id;
} Added;

typedef struct {
    PyObject_HEAD
    uint8_t *cls;      /* [BMP] CLASS_* */
    uint16_t *lower;   /* [BMP] normalised char */
    int32_t *single;   /* [BMP] id of the one-char word token, by normalised char; -1 if none */
    Slot *slots;
    uint64_t mask;     /* capacity - 1, capacity a power of two */
    char *pool;
    char *prefix;      /* continuing_subword_prefix, UTF-8 */
    Py_ssize_t prefix_len;
    uint64_t prefix_hash; /* FNV-1a state after the prefix */
    Py_ssize_t max_word, max_cont; /* longest key in chars: any key / continuation key without prefix */
    int32_t unk;       /* -1: no unknown token in the vocab (the backend raises) */
    Py_ssize_t max_chars;
    Added *added;
    Py_ssize_t n_added;
    uint8_t added_first[BMP / 8]; /* bitmap: BMP chars that start an added token */
    /* scratch, reused across calls (the GIL is held throughout) */
    int32_t *ids, *offs;
    Py_ssize_t out_cap;
    char *wbytes;      /* the current word, normalised, UTF-8 */
    Py_ssize_t *wpos;  /* byte offset of each char in wbytes, plus the end */
    Py_ssize_t *worig; /* original code-point index of each char */
    Py_ssize_t wcap;
} Encoder;

/* 64-bit FNV-1a (offset basis, prime): fast and good enough for short keys. */
#define FNV_OFFSET 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL

static inline uint64_t fnv(uint64_t h, const char *s, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * FNV_PRIME;
    return h;
}

/* Fold high bits into the low ones the mask keeps (FNV's low bits alone mix poorly). */
static inline uint64_t slot_index(uint64_t h) { return h ^ (h >> 29); }

/* Id of the key (prefix if with_prefix) + s[0:n], or -1. */
static int32_t lookup(const Encoder *e, int with_prefix, const char *s, Py_ssize_t n) {
    uint64_t h = fnv(with_prefix ? e->prefix_hash : FNV_OFFSET, s, n);
    Py_ssize_t p = with_prefix ? e->prefix_len : 0;
    uint32_t check = (uint32_t)(h >> 32);
    for (uint64_t i = slot_index(h) & e->mask;; i = (i + 1) & e->mask) {
        const Slot *sl = &e->slots[i];
        if (sl->id < 0) return -1;
        if (sl->check == check && sl->len == (uint32_t)(p + n) && memcmp(e->pool + sl->off, e->prefix, p) == 0 &&
            memcmp(e->pool + sl->off + p, s, n) == 0)
            return sl->id;
    }
}

/* UTF-8 of a BMP char: 1 to 3 bytes. */
static inline int put_utf8(char *out, uint32_t c) {
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    out[0] = (char)(0xE0 | (c >> 12));
    out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[2] = (char)(0x80 | (c & 0x3F));
    return 3;
}

static Py_ssize_t utf8_chars(const char *s, Py_ssize_t n) {
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < n; i++) k += ((uint8_t)s[i] & 0xC0) != 0x80;
    return k;
}

static void Encoder_dealloc(Encoder *e) {
    PyMem_Free(e->cls);
    PyMem_Free(e->lower);
    PyMem_Free(e->single);
    PyMem_Free(e->slots);
    PyMem_Free(e->pool);
    PyMem_Free(e->prefix);
    for (Py_ssize_t i = 0; i < e->n_added; i++) PyMem_Free(e->added[i].chars);
    PyMem_Free(e->added);
    PyMem_Free(e->ids);
    PyMem_Free(e->offs);
    PyMem_Free(e->wbytes);
    PyMem_Free(e->wpos);
    PyMem_Free(e->worig);
    Py_TYPE(e)->tp_free((PyObject *)e);
}

static int build_vocab(Encoder *e, PyObject *vocab) {
    Py_ssize_t n = PyDict_Size(vocab), pos = 0, total = 0, len;
    PyObject *key, *value;
    while (PyDict_Next(vocab, &pos, &key, &value)) {
        if (!PyUnicode_Check(key) || !PyUnicode_AsUTF8AndSize(key, &len)) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "vocab keys must be str");
            return -1;
        }
        total += len;
    }
    if (total >= UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "vocab too large");
        return -1;
    }
    uint64_t cap = 16;
    while (cap < 2 * (uint64_t)n) cap *= 2; /* load factor <= 1/2 */
    e->mask = cap - 1;
    e->slots = PyMem_Malloc(cap * sizeof(Slot));
    e->pool = PyMem_Malloc(total ? total : 1);
    if (!e->slots || !e->pool) {
        PyErr_NoMemory();
        return -1;
    }
    for (uint64_t i = 0; i < cap; i++) e->slots[i].id = -1;
    uint32_t off = 0;
    pos = 0;
    while (PyDict_Next(vocab, &pos, &key, &value)) {
        const char *s = PyUnicode_AsUTF8AndSize(key, &len);
        long id = PyLong_AsLong(value);
        if (id == -1 && PyErr_Occurred()) return -1;
        if (id < 0 || id > INT32_MAX) {
            PyErr_SetString(PyExc_ValueError, "vocab ids must be in [0, 2**31)");
            return -1;
        }
        memcpy(e->pool + off, s, len);
        uint64_t h = fnv(FNV_OFFSET, s, len);
        uint64_t i = slot_index(h) & e->mask;
        while (e->slots[i].id >= 0) i = (i + 1) & e->mask;
        e->slots[i] = (Slot){(uint32_t)(h >> 32), off, (uint32_t)len, (int32_t)id};
        off += (uint32_t)len;
        Py_ssize_t chars = utf8_chars(s, len);
        if (chars > e->max_word) e->max_word = chars;
        if (len >= e->prefix_len && memcmp(s, e->prefix, e->prefix_len) == 0) {
            Py_ssize_t rest = chars - utf8_chars(e->prefix, e->prefix_len);
            if (rest > e->max_cont) e->max_cont = rest;
        }
    }
    return 0;
}

static int build_added(Encoder *e, PyObject *added) {
    Py_ssize_t n = PyList_GET_SIZE(added);
    e->added = PyMem_Calloc(n ? n : 1, sizeof(Added));
    if (!e->added) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(added, i), *content;
        int id;
        if (!PyTuple_Check(item) || !PyArg_ParseTuple(item, "Ui", &content, &id)) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "added tokens must be (str, int) pairs");
            return -1;
        }
        Py_ssize_t len = PyUnicode_GET_LENGTH(content);
        if (len == 0 || id < 0) {
            PyErr_SetString(PyExc_ValueError, "added tokens must be non-empty with ids >= 0");
            return -1;
        }
        Py_UCS4 *chars = PyUnicode_AsUCS4Copy(content);
        if (!chars) return -1;
        e->added[e->n_added++] = (Added){chars, len, id};
        if (chars[0] < BMP) e->added_first[chars[0] >> 3] |= (uint8_t)(1u << (chars[0] & 7));
    }
    return 0;
}

static PyObject *Encoder_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"classes", "lower", "vocab", "prefix", "unk_id", "max_chars", "added", NULL};
    Py_buffer classes, lower;
    PyObject *vocab, *prefix, *added;
    int unk;
    Py_ssize_t max_chars, plen;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*y*O!UinO!:Encoder", kwlist, &classes, &lower, &PyDict_Type, &vocab,
                                     &prefix, &unk, &max_chars, &PyList_Type, &added))
        return NULL;
    Encoder *e = NULL;
    if (classes.len != BMP || lower.len != BMP * (Py_ssize_t)sizeof(uint16_t)) {
        PyErr_SetString(PyExc_ValueError, "classes must hold 65536 bytes and lower 65536 uint16");
        goto done;
    }
    if (max_chars < 0) {
        PyErr_SetString(PyExc_ValueError, "max_chars must be >= 0");
        goto done;
    }
    e = (Encoder *)type->tp_alloc(type, 0);
    if (!e) goto done;
    e->unk = unk;
    e->max_chars = max_chars;
    const char *p = PyUnicode_AsUTF8AndSize(prefix, &plen);
    if (!p) goto fail;
    e->cls = PyMem_Malloc(BMP);
    e->lower = PyMem_Malloc(BMP * sizeof(uint16_t));
    e->single = PyMem_Malloc(BMP * sizeof(int32_t));
    e->prefix = PyMem_Malloc(plen + 1);
    if (!e->cls || !e->lower || !e->single || !e->prefix) {
        PyErr_NoMemory();
        goto fail;
    }
    memcpy(e->prefix, p, plen + 1);
    e->prefix_len = plen;
    e->prefix_hash = fnv(FNV_OFFSET, p, plen);
    memcpy(e->cls, classes.buf, BMP);
    memcpy(e->lower, lower.buf, BMP * sizeof(uint16_t));
    for (Py_ssize_t c = 0; c < BMP; c++) {
        if (e->cls[c] >= N_CLASSES) {
            PyErr_SetString(PyExc_ValueError, "unknown character class");
            goto fail;
        }
    }
    if (build_vocab(e, vocab) < 0 || build_added(e, added) < 0) goto fail;
    for (uint32_t c = 0; c < BMP; c++) {
        char buf[3];
        e->single[c] = (c >= 0xD800 && c < 0xE000) ? -1 : lookup(e, 0, buf, put_utf8(buf, c));
    }
    goto done;
fail:
    Py_CLEAR(e);
done:
    PyBuffer_Release(&classes);
    PyBuffer_Release(&lower);
    return (PyObject *)e;
}

static int grow_word(Encoder *e) {
    Py_ssize_t cap = e->wcap ? 2 * e->wcap : 64; /* chars; most words are far shorter */
    if (cap > e->max_chars) cap = e->max_chars;
    char *b = PyMem_Realloc(e->wbytes, 3 * cap); /* at most 3 UTF-8 bytes per BMP char */
    if (b) e->wbytes = b;
    Py_ssize_t *wp = PyMem_Realloc(e->wpos, (cap + 1) * sizeof(Py_ssize_t));
    if (wp) e->wpos = wp;
    Py_ssize_t *wo = PyMem_Realloc(e->worig, cap * sizeof(Py_ssize_t));
    if (wo) e->worig = wo;
    if (!b || !wp || !wo) {
        PyErr_NoMemory();
        return -1;
    }
    e->wcap = cap;
    return 0;
}

/* Emit the WordPiece tokens of the current word (wn chars, original chars first..last); returns
 * the new token count, or -1 when it needs the missing unknown token. */
static Py_ssize_t flush_word(Encoder *e, Py_ssize_t wn, Py_ssize_t first, Py_ssize_t last, Py_ssize_t nt) {
    Py_ssize_t base = nt;
    if (wn <= e->max_chars) {
        Py_ssize_t start = 0;
        while (start < wn) {
            Py_ssize_t end = start + (start ? e->max_cont : e->max_word);
            if (end > wn) end = wn;
            int32_t id = -1;
            for (; end > start; end--) {
                id = lookup(e, start > 0, e->wbytes + e->wpos[start], e->wpos[end] - e->wpos[start]);
                if (id >= 0) break;
            }
            if (id < 0) break;
            e->ids[nt] = id;
            e->offs[2 * nt] = (int32_t)e->worig[start];
            e->offs[2 * nt + 1] = (int32_t)e->worig[end - 1] + 1;
            nt++;
            start = end;
        }
        if (start == wn) return nt;
    }
    if (e->unk < 0) return -1;
    e->ids[base] = e->unk;
    e->offs[2 * base] = (int32_t)first;
    e->offs[2 * base + 1] = (int32_t)last + 1;
    return base + 1;
}

/* Length of the longest added token starting at text[i], or 0; its id in *id. */
static Py_ssize_t match_added(const Encoder *e, int kind, const void *data, Py_ssize_t n, Py_ssize_t i, int32_t *id) {
    Py_ssize_t best = 0;
    for (Py_ssize_t a = 0; a < e->n_added; a++) {
        const Added *t = &e->added[a];
        if (t->len <= best || t->len > n - i) continue;
        Py_ssize_t k = 0;
        while (k < t->len && PyUnicode_READ(kind, data, i + k) == t->chars[k]) k++;
        if (k == t->len) {
            best = k;
            *id = t->id;
        }
    }
    return best;
}

PyDoc_STRVAR(encode_doc,
             "encode(text) -> (ids, offsets) | None\n\n"
             "Token ids (packed native int32) and [start, end) code-point offsets into text (packed int32 pairs),\n"
             "or None when the text needs the backend (see the module docstring).");

static PyObject *Encoder_encode(Encoder *e, PyObject *text) {
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "text must be str");
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0) return NULL;
#endif
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (n >= INT32_MAX) Py_RETURN_NONE; /* offsets are int32 */
    if (n > e->out_cap) {
        int32_t *ids = PyMem_Realloc(e->ids, n * sizeof(int32_t));
        if (ids) e->ids = ids;
        int32_t *offs = PyMem_Realloc(e->offs, 2 * n * sizeof(int32_t));
        if (offs) e->offs = offs;
        if (!ids || !offs) return PyErr_NoMemory();
        e->out_cap = n; /* every token covers at least one char of its own */
    }
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t nt = 0, wn = 0, wfirst = 0, wlast = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c >= BMP) Py_RETURN_NONE;
        if (e->added_first[c >> 3] & (1u << (c & 7))) {
            int32_t id;
            Py_ssize_t len = match_added(e, kind, data, n, i, &id);
            if (len) {
                if (wn && (nt = flush_word(e, wn, wfirst, wlast, nt)) < 0) Py_RETURN_NONE;
                wn = 0;
                e->ids[nt] = id;
                e->offs[2 * nt] = (int32_t)i;
                e->offs[2 * nt + 1] = (int32_t)(i + len);
                nt++;
                i += len - 1;
                continue;
            }
        }
        switch (e->cls[c]) {
        case CLASS_WORD:
            if (wn < e->max_chars) { /* longer words become one unknown token: no need to keep them */
                if (wn == e->wcap && grow_word(e) < 0) return NULL;
                if (wn == 0) e->wpos[0] = 0;
                e->wpos[wn + 1] = e->wpos[wn] + put_utf8(e->wbytes + e->wpos[wn], e->lower[c]);
                e->worig[wn] = i;
            }
            if (wn++ == 0) wfirst = i;
            wlast = i;
            break;
        case CLASS_SPACE:
            if (wn && (nt = flush_word(e, wn, wfirst, wlast, nt)) < 0) Py_RETURN_NONE;
            wn = 0;
            break;
        case CLASS_DROP:
            break;
        case CLASS_ISOLATE: {
            if (wn && (nt = flush_word(e, wn, wfirst, wlast, nt)) < 0) Py_RETURN_NONE;
            wn = 0;
            int32_t id = e->max_chars ? e->single[e->lower[c]] : -1;
            if (id < 0 && (id = e->unk) < 0) Py_RETURN_NONE;
            e->ids[nt] = id;
            e->offs[2 * nt] = (int32_t)i;
            e->offs[2 * nt + 1] = (int32_t)i + 1;
            nt++;
            break;
        }
        default:
            Py_RETURN_NONE;
        }
    }
    if (wn && (nt = flush_word(e, wn, wfirst, wlast, nt)) < 0) Py_RETURN_NONE;
    PyObject *ids = PyBytes_FromStringAndSize((const char *)e->ids, nt * sizeof(int32_t));
    PyObject *offs = PyBytes_FromStringAndSize((const char *)e->offs, 2 * nt * sizeof(int32_t));
    PyObject *out = (ids && offs) ? PyTuple_Pack(2, ids, offs) : NULL;
    Py_XDECREF(ids);
    Py_XDECREF(offs);
    return out;
}

static PyMethodDef Encoder_methods[] = {
    {"encode", (PyCFunction)Encoder_encode, METH_O, encode_doc},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(Encoder_doc,
             "Encoder(classes, lower, vocab, prefix, unk_id, max_chars, added)\n\n"
             "classes: 65536 bytes, the CLASS_* of each BMP code point; lower: 65536 native uint16, its normalised char;\n"
             "vocab: {token: id}; prefix: continuing_subword_prefix; unk_id: id of the unknown token or -1;\n"
             "max_chars: max_input_chars_per_word; added: [(content, id)] of the non-normalized added tokens.");

static PyTypeObject EncoderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "obert_lib.corpus._wordpiece.Encoder",
    .tp_basicsize = sizeof(Encoder),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = Encoder_doc,
    .tp_new = Encoder_new,
    .tp_dealloc = (destructor)Encoder_dealloc,
    .tp_methods = Encoder_methods,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_wordpiece", "BERT WordPiece tokenisation in C.", -1, NULL};

PyMODINIT_FUNC PyInit__wordpiece(void) {
    if (PyType_Ready(&EncoderType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&EncoderType);
    if (PyModule_AddObject(m, "Encoder", (PyObject *)&EncoderType) < 0) {
        Py_DECREF(&EncoderType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
