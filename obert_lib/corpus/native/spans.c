/*
 * obert_lib.corpus._spans: the span annotation of one paragraph, in one C call.
 *
 * Given a paragraph, its words (char_start, char_end, tag id, record id: int32 x 4 per word, from
 * obert_lib.corpus._segmenter) and its WordPiece token offsets (int32 x 2 per token, from
 * obert_lib.corpus._wordpiece), this computes the six span lists of obert_lib.corpus.annotate
 * (word, entity, keyword, phrase, clause, sentence) and maps them to token spans exactly as
 * obert_lib.corpus.tokenizer.spans_by_type_to_tokens does. annotate.py holds the Python reference
 * of every rule; tests/corpus/test_native_spans.py checks equality on real text.
 *
 * Tables set once per process:
 *   set_tag_classes(bytes)   one byte of class bits per tag id (CLASS_* below)
 *   set_keyword_table(words, idf values, stop words, lowers_to_ascii)
 *       an open-addressing hash over code-point strings: the IDF of each word of jieba's table and
 *       whether it is a stop word (stop words are compared lower-cased, as annotate.keyword_spans).
 *
 * Characters are read through the PEP 393 kind/data of the str, so offsets are code points.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "huge_alloc.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Tag class bits (annotate.py: ENTITY_POS, NOUN_POS, MODIFIER_POS, and the tags x, m, uj, v). */
enum {
    CLASS_X = 1, CLASS_M = 2, CLASS_ENTITY = 4, CLASS_NOUN = 8, CLASS_MODIFIER = 16, CLASS_UJ = 32, CLASS_V = 64
};

static uint8_t *tag_classes = NULL;
static Py_ssize_t n_tag_classes = 0;

typedef struct {
    uint32_t start;  /* offset of the key's code points in key_pool */
    uint32_t len;    /* 0 = empty slot */
    double idf;
    uint32_t tag;    /* upper half of the key's hash: most failed probes stop here, before key_pool */
    uint8_t has_idf;
    uint8_t is_stop;
} Entry;  /* 24 bytes */

static Entry *table = NULL;
static size_t table_mask = 0;  /* capacity - 1; capacity is a power of two */
static uint32_t *key_pool = NULL;
static size_t key_pool_len = 0, key_pool_cap = 0;
static double idf_median = 0.0;
static int have_keyword_table = 0;
static uint8_t lowers_to_ascii[0x10000 / 8];  /* BMP chars > 127 whose str.lower() is ASCII (e.g. KELVIN SIGN) */

typedef struct {
    int kind;
    const void *data;
} Text;

static inline uint32_t ch(const Text *t, Py_ssize_t i) { return PyUnicode_READ(t->kind, t->data, i); }

/* FNV-1a over code points: fast and good enough for short keys. */
static uint64_t hash_cps(const Text *t, Py_ssize_t s, Py_ssize_t e, int ascii_lower) {
    uint64_t h = 1469598103934665603ULL;
    for (Py_ssize_t i = s; i < e; i++) {
        uint32_t c = ch(t, i);
        if (ascii_lower && c >= 'A' && c <= 'Z') c += 32;
        h = (h ^ c) * 1099511628211ULL;
    }
    return h;
}

static int key_equals(const Entry *en, const Text *t, Py_ssize_t s, Py_ssize_t e, int ascii_lower) {
    if ((Py_ssize_t)en->len != e - s) return 0;
    const uint32_t *k = key_pool + en->start;
    for (Py_ssize_t i = s; i < e; i++) {
        uint32_t c = ch(t, i);
        if (ascii_lower && c >= 'A' && c <= 'Z') c += 32;
        if (k[i - s] != c) return 0;
    }
    return 1;
}

/* The entry of text[s:e] (hash h = hash_cps(t, s, e, ascii_lower)), or NULL. */
static Entry *lookup_hashed(const Text *t, Py_ssize_t s, Py_ssize_t e, int ascii_lower, uint64_t h) {
    size_t i = (size_t)h & table_mask;
    uint32_t tag = (uint32_t)(h >> 32);
    while (table[i].len) {
        if (table[i].tag == tag && key_equals(&table[i], t, s, e, ascii_lower)) return &table[i];
        i = (i + 1) & table_mask;
    }
    return NULL;
}

static Entry *lookup(const Text *t, Py_ssize_t s, Py_ssize_t e, int ascii_lower) {
    return lookup_hashed(t, s, e, ascii_lower, hash_cps(t, s, e, ascii_lower));
}

/* Insert (or find) a key; returns the entry or NULL on memory error. */
static Entry *insert(PyObject *word) {
    Text t = {PyUnicode_KIND(word), PyUnicode_DATA(word)};
    Py_ssize_t n = PyUnicode_GET_LENGTH(word);
    if (n == 0) return NULL;
    Entry *found = lookup(&t, 0, n, 0);
    if (found) return found;
    if (key_pool_len + (size_t)n > key_pool_cap) {
        size_t cap = key_pool_cap ? key_pool_cap * 2 : 1 << 20;
        while (cap < key_pool_len + (size_t)n) cap *= 2;
        uint32_t *grown = realloc(key_pool, cap * sizeof(uint32_t));
        if (!grown) return NULL;
        key_pool = grown;
        key_pool_cap = cap;
    }
    for (Py_ssize_t i = 0; i < n; i++) key_pool[key_pool_len + i] = ch(&t, i);
    uint64_t h = hash_cps(&t, 0, n, 0);
    size_t i = (size_t)h & table_mask;
    while (table[i].len) i = (i + 1) & table_mask;
    table[i].start = (uint32_t)key_pool_len;
    table[i].len = (uint32_t)n;
    table[i].tag = (uint32_t)(h >> 32);
    table[i].has_idf = table[i].is_stop = 0;
    key_pool_len += (size_t)n;
    return &table[i];
}

/* Mark the BMP code points of the list `to_ascii` in lowers_to_ascii; -1 with ValueError on a bad one. */
static int set_lowers_to_ascii(PyObject *to_ascii) {
    memset(lowers_to_ascii, 0, sizeof lowers_to_ascii);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(to_ascii); i++) {
        long c = PyLong_AsLong(PyList_GET_ITEM(to_ascii, i));
        if (c < 0 || c >= 0x10000) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "lowers_to_ascii holds BMP code points only");
            return -1;
        }
        lowers_to_ascii[c >> 3] |= (uint8_t)(1 << (c & 7));
    }
    return 0;
}

static PyObject *set_tag_classes(PyObject *self, PyObject *args) {
    Py_buffer buf;
    if (!PyArg_ParseTuple(args, "y*", &buf)) return NULL;
    uint8_t *copy = malloc(buf.len ? (size_t)buf.len : 1);
    if (!copy) { PyBuffer_Release(&buf); return PyErr_NoMemory(); }
    memcpy(copy, buf.buf, (size_t)buf.len);
    free(tag_classes);
    tag_classes = copy;
    n_tag_classes = buf.len;
    PyBuffer_Release(&buf);
    Py_RETURN_NONE;
}

static PyObject *set_keyword_table(PyObject *self, PyObject *args) {
    PyObject *words, *values, *stops, *to_ascii;
    double median;
    if (!PyArg_ParseTuple(args, "O!O!O!dO!", &PyList_Type, &words, &PyList_Type, &values, &PyList_Type, &stops,
                          &median, &PyList_Type, &to_ascii))
        return NULL;
    Py_ssize_t n_words = PyList_GET_SIZE(words), n_stops = PyList_GET_SIZE(stops);
    if (PyList_GET_SIZE(values) != n_words) {
        PyErr_SetString(PyExc_ValueError, "set_keyword_table: words and idf values differ in length");
        return NULL;
    }
    size_t cap = 1;
    while (cap < 3 * (size_t)(n_words + n_stops) / 2 + 16) cap <<= 1;  /* load factor <= 2/3: a 12 MB table for jieba's */
    free(table);
    table = huge_alloc(cap * sizeof(Entry), 1);
    if (!table) return PyErr_NoMemory();
    table_mask = cap - 1;
    key_pool_len = 0;
    have_keyword_table = 0;
    for (Py_ssize_t i = 0; i < n_words + n_stops; i++) {
        PyObject *w = i < n_words ? PyList_GET_ITEM(words, i) : PyList_GET_ITEM(stops, i - n_words);
        if (!PyUnicode_Check(w)) {
            PyErr_SetString(PyExc_TypeError, "set_keyword_table: words must be str");
            return NULL;
        }
        if (PyUnicode_GET_LENGTH(w) == 0) continue;
        Entry *en = insert(w);
        if (!en) return PyErr_NoMemory();
        if (i < n_words) {
            double v = PyFloat_AsDouble(PyList_GET_ITEM(values, i));
            if (v == -1.0 && PyErr_Occurred()) return NULL;
            en->idf = v;
            en->has_idf = 1;
        } else {
            en->is_stop = 1;
        }
    }
    if (set_lowers_to_ascii(to_ascii)) return NULL;
    idf_median = median;
    have_keyword_table = 1;
    Py_RETURN_NONE;
}

/* Decode one UTF-8 sequence at p (< end); returns its length, or 0 when invalid. */
static int utf8_decode(const unsigned char *p, const unsigned char *end, uint32_t *cp) {
    unsigned char c = p[0];
    int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!n || p + n > end) return 0;
    uint32_t v = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    static const uint32_t min_value[5] = {0, 0, 0x80, 0x800, 0x10000};  /* reject overlong forms */
    if (v < min_value[n] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return n;
}

/* Code points other than \n that str.splitlines() also breaks at: a file holding one is left to Python. */
static int python_line_break(uint32_t c) {
    return c == '\r' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E) || c == 0x85 || c == 0x2028 || c == 0x2029;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Insert a word given as code points; returns the entry or NULL on memory error. */
static Entry *insert_cps(const uint32_t *cps, Py_ssize_t n) {
    PyObject *word = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, cps, n);
    if (!word) return NULL;
    Entry *en = insert(word);
    Py_DECREF(word);
    return en;
}

/* load_idf_file(path, stop words, lowers_to_ascii) -> median: the keyword table straight from jieba's
   idf.txt ("word value" lines), as annotate.jieba_idf reads it. ValueError when a line is not of the
   plain form (the caller then builds the table from Python). */
static PyObject *load_idf_file(PyObject *self, PyObject *args) {
    const char *path;
    PyObject *stops, *to_ascii;
    if (!PyArg_ParseTuple(args, "sO!O!", &path, &PyList_Type, &stops, &PyList_Type, &to_ascii)) return NULL;
    FILE *fh = fopen(path, "rb");
    if (!fh) return PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
    fseek(fh, 0, SEEK_END);
    long size = ftell(fh);
    fseek(fh, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)size + 1);
    if (!buf) { fclose(fh); return PyErr_NoMemory(); }
    size_t got = fread(buf, 1, (size_t)size, fh);
    fclose(fh);
    buf[got] = 0;
    const unsigned char *p = buf, *end = buf + got;
    size_t lines = 1;
    for (const unsigned char *q = p; q < end; q++) lines += *q == '\n';
    size_t cap = 1;
    while (cap < 3 * (lines + (size_t)PyList_GET_SIZE(stops)) / 2 + 16) cap <<= 1;  /* load factor <= 2/3 */
    free(table);
    table = huge_alloc(cap * sizeof(Entry), 1);
    uint32_t *cps = malloc(4096 * sizeof(uint32_t));
    double *values = malloc(lines * sizeof(double));
    PyObject *result = NULL;
    if (!table || !cps || !values) { PyErr_NoMemory(); goto done; }
    table_mask = cap - 1;
    key_pool_len = 0;
    have_keyword_table = 0;
    while (p < end) {
        const unsigned char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        Py_ssize_t n = 0;
        const unsigned char *q = p;
        while (q < eol && *q != ' ') {
            uint32_t c;
            int len = utf8_decode(q, eol, &c);
            if (!len || python_line_break(c) || n == 4096) {
                PyErr_Format(PyExc_ValueError, "%s: a line the C reader does not take as annotate.jieba_idf does", path);
                goto done;
            }
            cps[n++] = c;
            q += len;
        }
        if (q < eol) {  /* "word value": a value follows the first space */
            char number[64];
            size_t vlen = (size_t)(eol - q - 1);
            char *stop_at;
            if (n == 0 || vlen == 0 || vlen >= sizeof number) {
                PyErr_Format(PyExc_ValueError, "%s: a line the C reader does not take as annotate.jieba_idf does", path);
                goto done;
            }
            memcpy(number, q + 1, vlen);
            number[vlen] = 0;
            double v = strtod(number, &stop_at);
            if (stop_at == number || *stop_at) {
                PyErr_Format(PyExc_ValueError, "%s: '%s' is not a plain number", path, number);
                goto done;
            }
            Entry *en = insert_cps(cps, n);
            if (!en) { PyErr_NoMemory(); goto done; }
            en->idf = v;
            en->has_idf = 1;
        }
        p = eol + 1;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(stops); i++) {
        PyObject *w = PyList_GET_ITEM(stops, i);
        if (!PyUnicode_Check(w) || PyUnicode_GET_LENGTH(w) == 0) continue;
        Entry *en = insert(w);
        if (!en) { PyErr_NoMemory(); goto done; }
        en->is_stop = 1;
    }
    size_t n_values = 0;
    for (size_t i = 0; i <= table_mask; i++)
        if (table[i].len && table[i].has_idf) values[n_values++] = table[i].idf;
    if (!n_values) {
        PyErr_Format(PyExc_ValueError, "%s holds no IDF values", path);
        goto done;
    }
    qsort(values, n_values, sizeof(double), cmp_double);
    idf_median = values[n_values / 2];  /* sorted(idf.values())[len(idf) // 2] */
    if (set_lowers_to_ascii(to_ascii)) goto done;
    have_keyword_table = 1;
    result = PyFloat_FromDouble(idf_median);
done:
    free(buf);
    free(cps);
    free(values);
    return result;
}

/* idf_of(word) -> the table's IDF of `word`, or None (for tests). */
static PyObject *idf_of(PyObject *self, PyObject *args) {
    PyObject *word;
    if (!PyArg_ParseTuple(args, "U", &word)) return NULL;
    if (!table) Py_RETURN_NONE;
    Text t = {PyUnicode_KIND(word), PyUnicode_DATA(word)};
    Entry *en = lookup(&t, 0, PyUnicode_GET_LENGTH(word), 0);
    if (!en || !en->has_idf) Py_RETURN_NONE;
    return PyFloat_FromDouble(en->idf);
}

/* ---- growable int32 pair lists ---------------------------------------------------------------- */

typedef struct {
    int32_t *v;
    Py_ssize_t n, cap;  /* n counts int32 values (2 per span) */
} Pairs;

static int push(Pairs *p, int32_t a, int32_t b) {
    if (p->n + 2 > p->cap) {
        Py_ssize_t cap = p->cap ? p->cap * 2 : 64;
        int32_t *grown = realloc(p->v, (size_t)cap * sizeof(int32_t));
        if (!grown) return -1;
        p->v = grown;
        p->cap = cap;
    }
    p->v[p->n++] = a;
    p->v[p->n++] = b;
    return 0;
}

static int cmp_pair(const void *a, const void *b) {
    const int32_t *x = a, *y = b;
    if (x[0] != y[0]) return x[0] < y[0] ? -1 : 1;
    return (x[1] > y[1]) - (x[1] < y[1]);
}

/* ---- span rules (annotate.py) ----------------------------------------------------------------- */

typedef struct {
    int32_t s, e, tag, rec;
} Word;

static inline uint8_t cls(const Word *w) {
    return (w->tag >= 0 && w->tag < n_tag_classes) ? tag_classes[w->tag] : 0;
}

/* phrase_spans: modifier/noun runs ending in a noun (2+ words), and verb + noun-run pairs. */
static int phrases(const Word *w, Py_ssize_t n, Pairs *out) {
    Py_ssize_t i = 0;
    while (i < n) {
        uint8_t c = cls(&w[i]);
        if ((c & CLASS_MODIFIER) && !(c & CLASS_UJ)) {
            Py_ssize_t j = i;
            while (j + 1 < n && (cls(&w[j + 1]) & CLASS_MODIFIER)) j++;
            Py_ssize_t k = j;
            while (k > i && !(cls(&w[k]) & CLASS_NOUN)) k--;
            if (k > i) {
                if (push(out, w[i].s, w[k].e)) return -1;
                i = k + 1;
                continue;
            }
        }
        if ((c & CLASS_V) && i + 1 < n && (cls(&w[i + 1]) & CLASS_NOUN)) {
            Py_ssize_t j = i + 1;
            while (j + 1 < n && (cls(&w[j + 1]) & CLASS_NOUN) && j - i < 2) j++;
            if (push(out, w[i].s, w[j].e)) return -1;
            i = j + 1;
            continue;
        }
        i++;
    }
    return 0;
}

/* _CLAUSE_SPLIT = [，,；;：:、。！？!?\n…] */
static inline int is_clause_punct(uint32_t c) {
    switch (c) {
    case 0xFF0C: case ',': case 0xFF1B: case ';': case 0xFF1A: case ':': case 0x3001: case 0x3002:
    case 0xFF01: case 0xFF1F: case '!': case '?': case '\n': case 0x2026:
        return 1;
    default:
        return 0;
    }
}

/* clause_spans: segments of 2+ characters between runs of clause punctuation. */
static int clauses(const Text *t, Py_ssize_t len, Pairs *out) {
    Py_ssize_t start = 0, i = 0;
    while (i < len) {
        if (!is_clause_punct(ch(t, i))) { i++; continue; }
        Py_ssize_t run_end = i;
        while (run_end < len && is_clause_punct(ch(t, run_end))) run_end++;
        if (i - start >= 2 && push(out, (int32_t)start, (int32_t)i)) return -1;
        start = run_end;
        i = run_end;
    }
    if (len - start >= 2 && push(out, (int32_t)start, (int32_t)len)) return -1;
    return 0;
}

/* str.isspace(): the 29 code points Python treats as whitespace (checked by the tests). */
static inline int py_isspace(uint32_t c) {
    if (c <= 0x20) return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
    if (c < 0x85) return 0;
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

static inline int is_sentence_end(uint32_t c) {  /* [。！？!?] */
    return c == 0x3002 || c == 0xFF01 || c == 0xFF1F || c == '!' || c == '?';
}

static inline int is_closing(uint32_t c) {  /* [”’」』）)\"'] */
    return c == 0x201D || c == 0x2019 || c == 0x300D || c == 0x300F || c == 0xFF09 || c == ')' || c == '"' || c == '\'';
}

/* Length of a _SENTENCE_END match at i (0 if none): (?:[。！？!?]+|…{1,2}|\.{3,})[”’」』）)\"']* */
static Py_ssize_t sentence_end_at(const Text *t, Py_ssize_t len, Py_ssize_t i) {
    Py_ssize_t j = i;
    uint32_t c = ch(t, i);
    if (is_sentence_end(c)) {
        while (j < len && is_sentence_end(ch(t, j))) j++;
    } else if (c == 0x2026) {
        j++;
        if (j < len && ch(t, j) == 0x2026) j++;
    } else if (c == '.') {
        while (j < len && ch(t, j) == '.') j++;
        if (j - i < 3) return 0;
    } else {
        return 0;
    }
    while (j < len && is_closing(ch(t, j))) j++;
    return j - i;
}

static int has_non_space(const Text *t, Py_ssize_t s, Py_ssize_t e) {
    for (Py_ssize_t i = s; i < e; i++)
        if (!py_isspace(ch(t, i))) return 1;
    return 0;
}

/* sentence_spans: up to and including a sentence end plus closing quotes/brackets. */
static int sentences(const Text *t, Py_ssize_t len, Pairs *out) {
    Py_ssize_t start = 0, i = 0;
    while (i < len) {
        Py_ssize_t m = sentence_end_at(t, len, i);
        if (!m) { i++; continue; }
        if (has_non_space(t, start, i + m) && push(out, (int32_t)start, (int32_t)(i + m))) return -1;
        start = i = i + m;
    }
    if (has_non_space(t, start, len) && push(out, (int32_t)start, (int32_t)len)) return -1;
    return 0;
}

/* Compare two substrings of the text by code point (Python str ordering). */
static int cmp_sub(const Text *t, const Word *a, const Word *b) {
    Py_ssize_t la = a->e - a->s, lb = b->e - b->s, n = la < lb ? la : lb;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t x = ch(t, a->s + i), y = ch(t, b->s + i);
        if (x != y) return x < y ? -1 : 1;
    }
    return (la > lb) - (la < lb);
}

typedef struct {
    const Word *w;    /* first occurrence of the candidate word */
    double score;     /* -tf * idf, as annotate.keyword_spans sorts */
    Py_ssize_t group;
} Candidate;

static const Text *sort_text;  /* qsort has no context argument in C11 */

/* Up to this top_k, keywords() keeps the k best candidates by insertion (k comparisons per candidate at
   most) instead of sorting them all; the comparison is a total order, so the chosen set is the same. */
#define TOP_K_BY_INSERTION 16

static int cmp_candidate(const void *a, const void *b) {
    const Candidate *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? -1 : 1;
    return cmp_sub(sort_text, x->w, y->w);
}

/* keyword_spans: occurrences of the top-k TF-IDF words (2+ chars, not x/m, no stop words).
   Returns 1 when a word needs Python's str.lower() (the caller then uses the Python reference).
   Words of 2+ characters are grouped by string through a small per-paragraph hash table. */
static int keywords(const Text *t, const Word *w, Py_ssize_t n, int top_k, Pairs *out) {
    size_t slots = 16;
    while (slots < 2 * (size_t)n) slots <<= 1;
    /* one block: group of each word, then per group: first word, count, keep, hash; slots; scored */
    size_t bytes = (size_t)n * sizeof(Py_ssize_t) + (size_t)n * (sizeof(Word *) + sizeof(int32_t) + 1 + sizeof(uint64_t))
                   + slots * sizeof(int32_t) + (size_t)n * sizeof(Candidate) + 64;
    char *block = malloc(bytes ? bytes : 1);
    if (!block) return -1;
    Py_ssize_t *group = (Py_ssize_t *)block;                     /* word -> group, -1 below 2 chars */
    const Word **first = (const Word **)(group + n);              /* group -> first occurrence */
    uint64_t *hashes = (uint64_t *)(first + n);                   /* group -> hash_cps of its word */
    int32_t *count = (int32_t *)(hashes + n);                     /* group -> occurrences not tagged x/m */
    int32_t *slot = count + n;                                    /* hash slot -> group + 1, 0 = empty */
    Candidate *scored = (Candidate *)(((uintptr_t)(slot + slots) + 15) & ~(uintptr_t)15);
    uint8_t *keep = (uint8_t *)(scored + n);                      /* group -> among the top k */
    memset(slot, 0, slots * sizeof(int32_t));
    Py_ssize_t n_groups = 0, n_scored = 0;
    int rc = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        group[i] = -1;
        if (w[i].e - w[i].s < 2) continue;
        uint64_t h = hash_cps(t, w[i].s, w[i].e, 0);
        size_t k = (size_t)h & (slots - 1);
        Py_ssize_t g = -1;
        while (slot[k]) {
            Py_ssize_t c = slot[k] - 1;
            if (hashes[c] == h && cmp_sub(t, first[c], &w[i]) == 0) { g = c; break; }
            k = (k + 1) & (slots - 1);
        }
        if (g < 0) {
            g = n_groups++;
            /* the IDF lookup below is a cache miss in a 12 MB table: start every group's load now, so that
               they overlap instead of waiting one after another (lookup_hashed was 14% of this module's time) */
            __builtin_prefetch(&table[(size_t)h & table_mask]);
            first[g] = &w[i];
            hashes[g] = h;
            count[g] = 0;
            keep[g] = 0;
            slot[k] = (int32_t)(g + 1);
        }
        group[i] = g;
        if (!(cls(&w[i]) & (CLASS_X | CLASS_M))) count[g]++;
    }
    for (Py_ssize_t g = 0; g < n_groups; g++) {
        if (!count[g]) continue;
        const Word *x = first[g];
        int ascii_only = 1, has_upper = 0;
        for (Py_ssize_t i = x->s; i < x->e; i++) {
            uint32_t c = ch(t, i);
            if (c >= 0x80) {
                ascii_only = 0;
                if (c >= 0x10000 || (lowers_to_ascii[c >> 3] >> (c & 7) & 1)) { rc = 1; goto done; }
            } else if (c >= 'A' && c <= 'Z') {
                has_upper = 1;
            }
        }
        Entry *en = lookup_hashed(t, x->s, x->e, 0, hashes[g]);
        if (ascii_only) {  /* the stop words are ASCII: only an ASCII word can lower-case into one */
            Entry *stop = has_upper ? lookup(t, x->s, x->e, 1) : en;
            if (stop && stop->is_stop) continue;
        }
        double idf = (en && en->has_idf) ? en->idf : idf_median;
        scored[n_scored].w = x;
        scored[n_scored].score = (-(double)count[g]) * idf;
        scored[n_scored].group = g;
        n_scored++;
    }
    sort_text = t;
    if (top_k <= 0) {
        /* no keywords */
    } else if (top_k >= n_scored) {  /* every candidate is among the top k: no order needed */
        for (Py_ssize_t i = 0; i < n_scored; i++) keep[scored[i].group] = 1;
    } else if (top_k <= TOP_K_BY_INSERTION) {  /* the k first of the sorted order, without sorting the rest */
        Py_ssize_t best[TOP_K_BY_INSERTION], n_best = 0;
        for (Py_ssize_t i = 0; i < n_scored; i++) {
            if (n_best == top_k && cmp_candidate(&scored[i], &scored[best[n_best - 1]]) >= 0) continue;
            Py_ssize_t j = n_best < top_k ? n_best++ : n_best - 1;
            for (; j > 0 && cmp_candidate(&scored[i], &scored[best[j - 1]]) < 0; j--) best[j] = best[j - 1];
            best[j] = i;
        }
        for (Py_ssize_t i = 0; i < n_best; i++) keep[scored[best[i]].group] = 1;
    } else {
        qsort(scored, (size_t)n_scored, sizeof(Candidate), cmp_candidate);
        for (Py_ssize_t i = 0; i < top_k; i++) keep[scored[i].group] = 1;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (group[i] >= 0 && keep[group[i]] && push(out, w[i].s, w[i].e)) { rc = -1; break; }
done:
    free(block);
    return rc;
}

/* ---- char spans -> token spans (tokenizer.spans_by_type_to_tokens) ---------------------------- */

typedef struct {
    int32_t *first;   /* first[c]: first token ending after char c */
    int32_t *before;  /* before[c]: number of tokens starting before char c */
} TokenMap;

static int token_map(const int32_t *off, Py_ssize_t n_tok, Py_ssize_t n_chars, TokenMap *m) {
    m->first = malloc((size_t)(n_chars + 1) * sizeof(int32_t));
    m->before = malloc((size_t)(n_chars + 1) * sizeof(int32_t));
    if (!m->first || !m->before) return -1;
    Py_ssize_t nf = 0, nb = 0, prev_end = 0, prev_start = 0;
    for (Py_ssize_t t = 0; t < n_tok; t++) {
        Py_ssize_t s = off[2 * t], e = off[2 * t + 1];
        for (Py_ssize_t k = 0; k < e - prev_end && nf <= n_chars; k++) m->first[nf++] = (int32_t)t;
        for (Py_ssize_t k = 0; k < s + 1 - prev_start && nb <= n_chars; k++) m->before[nb++] = (int32_t)t;
        prev_end = e;
        prev_start = s + 1;
    }
    while (nf <= n_chars) m->first[nf++] = (int32_t)n_tok;
    while (nb <= n_chars) m->before[nb++] = (int32_t)n_tok;
    return 0;
}

static PyObject *to_token_spans(const TokenMap *m, const Pairs *p) {
    PyObject *out = PyBytes_FromStringAndSize(NULL, p->n * (Py_ssize_t)sizeof(int32_t));
    if (!out) return NULL;
    int32_t *v = (int32_t *)PyBytes_AS_STRING(out);
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < p->n; i += 2) {
        int32_t f = m->first[p->v[i]], l = m->before[p->v[i + 1]];
        if (f < l && !(k && v[k - 2] == f && v[k - 1] == l)) {
            v[k++] = f;
            v[k++] = l;
        }
    }
    if (_PyBytes_Resize(&out, k * (Py_ssize_t)sizeof(int32_t))) return NULL;
    return out;
}

#define N_TYPES 6  /* word, entity, keyword, phrase, clause, sentence (annotate.SPAN_TYPES order) */

/* annotate(text, words, token_offsets, kb_entities, top_k) -> 6 bytes of token spans, or None. */
static PyObject *annotate(PyObject *self, PyObject *args) {
    PyObject *text;
    Py_buffer wbuf, obuf, ebuf;
    int top_k;
    if (!PyArg_ParseTuple(args, "Uy*y*y*i", &text, &wbuf, &obuf, &ebuf, &top_k)) return NULL;
    PyObject *result = NULL;
    Pairs sp[N_TYPES];
    memset(sp, 0, sizeof sp);
    TokenMap map = {NULL, NULL};
    if (!tag_classes || !have_keyword_table) {
        PyErr_SetString(PyExc_RuntimeError, "_spans: call set_tag_classes and set_keyword_table first");
        goto out;
    }
    if (wbuf.len % 16 || obuf.len % 8 || ebuf.len % 8) {
        PyErr_SetString(PyExc_ValueError, "_spans.annotate: words are int32 x 4, offsets and entities int32 x 2");
        goto out;
    }
    Text t = {PyUnicode_KIND(text), PyUnicode_DATA(text)};
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    const Word *w = (const Word *)wbuf.buf;
    Py_ssize_t n_words = wbuf.len / 16, n_tok = obuf.len / 8, n_kb = ebuf.len / 8;
    const int32_t *kb = (const int32_t *)ebuf.buf;
    for (Py_ssize_t i = 0; i < n_words; i++) {
        if (w[i].s < 0 || w[i].e > len || w[i].s > w[i].e || (i && w[i].s < w[i - 1].e)) {
            PyErr_SetString(PyExc_ValueError, "_spans.annotate: words must be ordered, non-overlapping and inside the text");
            goto out;
        }
    }
    /* word: every word not tagged x (jieba tags punctuation and spaces x) */
    for (Py_ssize_t i = 0; i < n_words; i++)
        if (!(cls(&w[i]) & CLASS_X) && push(&sp[0], w[i].s, w[i].e)) goto nomem;
    /* entity: knowledge-base links, then 2+ char proper nouns that overlap none of them */
    for (Py_ssize_t i = 0; i < n_kb; i++)
        if (push(&sp[1], kb[2 * i], kb[2 * i + 1])) goto nomem;
    {
        Py_ssize_t k = 0;  /* kb spans are sorted and disjoint: walk them alongside the words */
        for (Py_ssize_t i = 0; i < n_words; i++) {
            if (!(cls(&w[i]) & CLASS_ENTITY) || w[i].e - w[i].s < 2) continue;
            while (k < n_kb && kb[2 * k + 1] <= w[i].s) k++;
            int overlaps = 0;
            for (Py_ssize_t j = k; j < n_kb && kb[2 * j] < w[i].e; j++)
                if (kb[2 * j + 1] > w[i].s) { overlaps = 1; break; }
            if (!overlaps && push(&sp[1], w[i].s, w[i].e)) goto nomem;
        }
        qsort(sp[1].v, (size_t)(sp[1].n / 2), 2 * sizeof(int32_t), cmp_pair);
    }
    int rc = keywords(&t, w, n_words, top_k, &sp[2]);
    if (rc < 0) goto nomem;
    if (rc == 1) {
        result = Py_NewRef(Py_None);
        goto out;
    }
    if (phrases(w, n_words, &sp[3]) || clauses(&t, len, &sp[4]) || sentences(&t, len, &sp[5])) goto nomem;
    result = PyTuple_New(N_TYPES);
    if (!result) goto out;
    if (n_tok == 0) {  /* no tokens: every list is empty (spans_by_type_to_tokens) */
        for (int i = 0; i < N_TYPES; i++) PyTuple_SET_ITEM(result, i, PyBytes_FromStringAndSize(NULL, 0));
        goto out;
    }
    {
        const int32_t *off = (const int32_t *)obuf.buf;
        Py_ssize_t n_chars = off[2 * n_tok - 1];
        for (int i = 0; i < N_TYPES; i++)
            for (Py_ssize_t k = 1; k < sp[i].n; k += 2)
                if (sp[i].v[k] > n_chars) n_chars = sp[i].v[k];
        if (token_map(off, n_tok, n_chars, &map)) goto nomem;
        for (int i = 0; i < N_TYPES; i++) {
            PyObject *b = to_token_spans(&map, &sp[i]);
            if (!b) { Py_CLEAR(result); goto out; }
            PyTuple_SET_ITEM(result, i, b);
        }
    }
    goto out;
nomem:
    Py_CLEAR(result);
    PyErr_NoMemory();
out:
    for (int i = 0; i < N_TYPES; i++) free(sp[i].v);
    free(map.first);
    free(map.before);
    PyBuffer_Release(&wbuf);
    PyBuffer_Release(&obuf);
    PyBuffer_Release(&ebuf);
    return result;
}

static PyMethodDef methods[] = {
    {"set_tag_classes", set_tag_classes, METH_VARARGS, "Set the class bits (one byte) of each tag id."},
    {"set_keyword_table", set_keyword_table, METH_VARARGS,
     "Set the keyword tables: (idf words, idf values, stop words, idf median, BMP chars lowering to ASCII)."},
    {"load_idf_file", load_idf_file, METH_VARARGS,
     "load_idf_file(path, stop words, lowers_to_ascii) -> IDF median: the keyword table from jieba's idf.txt"},
    {"idf_of", idf_of, METH_VARARGS, "idf_of(word) -> the keyword table's IDF of word, or None"},
    {"annotate", annotate, METH_VARARGS,
     "annotate(text, words, token_offsets, kb_entities, top_k) -> 6 bytes of int32 token spans, or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_spans", "Span annotation of a paragraph in C.", -1, methods};

PyMODINIT_FUNC PyInit__spans(void) { return PyModule_Create(&module); }
