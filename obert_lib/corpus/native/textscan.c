/*
 * obert_lib.corpus._textscan: one-pass character scans behind obert_lib.corpus.normalize and .filters.
 *
 * The per-document rules of the corpus cleaning steps are mostly regular expressions that, on short
 * documents, cost more in Python overhead than in matching. These scans either compute a rule's
 * counts directly (CJK, whitespace, punctuation and digit counts, the most frequent character, the
 * duplicated n-gram coverage, the items of a split line) or tell cheaply that a rule cannot change
 * the text, so the Python reference (kept in normalize.py / filters.py) runs only when it might.
 *
 * Character classes come from Python, never from C: at import normalize.py and filters.py mark, for
 * each class bit below, the code points their reference regular expressions (or unicodedata, or the
 * OpenCC dictionaries) select, with mark(chars, bits). Every scan reads one uint16 of class bits per
 * code point from that table. tests/corpus/test_native_textscan.py checks each scan against its reference.
 *
 * Keyword groups: set_groups(slot, groups) stores, per slot, groups of characters; groups_present
 * tells whether every character of at least one group occurs in a text (a necessary condition for a
 * keyword or a pattern whose required characters the group lists).
 *
 * Characters are read through the PEP 393 kind/data of the str, so counts and offsets are code points.
 * The static tables are used with the GIL held and no Python call in between, as the module state.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define N_CODE_POINTS 0x110000

/* Class bits; the Python module that uses a bit marks it (see the comment at the top). */
enum {
    SPACE = 1,       /* \s of re, i.e. str.isspace */
    DIGIT = 2,       /* \d of re: Unicode decimal digits */
    PUNCT = 4,       /* filters._PUNCT */
    CJK = 8,         /* filters._CJK */
    CONTROL = 16,    /* normalize._CONTROL */
    NFKC = 32,       /* NFKC may change it or the characters around it (normalize.py) */
    T2S = 64,        /* OpenCC t2s may change the text when it occurs (normalize.py) */
    SENT_END = 128,  /* filters._SENTENCE_END */
    NAV_SEP = 256,   /* characters filters._NAV_SPLIT consumes (whitespace included) */
    SEO_SEP = 512,   /* characters filters._SEO_SPLIT consumes (whitespace included) */
    CJK_STOP = 1024, /* normalize._CJK_OR_STOP: CJK and the stops around which spaces are dropped */
    /* 2048 << slot (slots 0..3): keyword group characters, see set_groups */
    HTML = 32768,    /* '<' and '&': normalize.strip_html does nothing without them */
};

/* line_rules_may_apply rule bits: which of steps.LineRules' rules are on */
enum { RULE_PRIVATE = 1, RULE_SPAM = 2, RULE_BOILERPLATE = 4, RULE_NAVIGATION = 8, RULE_SEO = 16 };

/* private_candidates bits */
enum { MAY_URL = 1, MAY_EMAIL = 2, MAY_PHONE = 4 };
/* A phone number of filters._PHONE has at least 10 digits: 0 + 2..3 + 7..8, or 1[3-9] + 9. */
#define MIN_PHONE_DIGITS 10

static uint16_t classes[N_CODE_POINTS];
static uint32_t char_counts[N_CODE_POINTS];  /* scratch of top_of and seo_spam_of, all zero between calls */

typedef struct {
    int kind;
    const void *data;
    Py_ssize_t len;
} Text;

static inline uint32_t at(const Text *t, Py_ssize_t i) { return PyUnicode_READ(t->kind, t->data, i); }

/* Run the statements that follow (...) for each code point `c` at index `i` of `t`, in a loop specialised to
 * the str's kind; `break` leaves the loop, `continue` goes to the next code point. */
#define FOR_EACH_CHAR(t, i, c, ...)                                                      \
    switch ((t)->kind) {                                                                 \
    case PyUnicode_1BYTE_KIND: {                                                         \
        const Py_UCS1 *d_ = (const Py_UCS1 *)(t)->data;                                  \
        for (Py_ssize_t i = 0; i < (t)->len; i++) { uint32_t c = d_[i]; __VA_ARGS__ }   \
        break;                                                                           \
    }                                                                                    \
    case PyUnicode_2BYTE_KIND: {                                                         \
        const Py_UCS2 *d_ = (const Py_UCS2 *)(t)->data;                                  \
        for (Py_ssize_t i = 0; i < (t)->len; i++) { uint32_t c = d_[i]; __VA_ARGS__ }   \
        break;                                                                           \
    }                                                                                    \
    default: {                                                                           \
        const Py_UCS4 *d_ = (const Py_UCS4 *)(t)->data;                                  \
        for (Py_ssize_t i = 0; i < (t)->len; i++) { uint32_t c = d_[i]; __VA_ARGS__ }   \
        break;                                                                           \
    }                                                                                    \
    }

static int get_text(PyObject *o, Text *t) {
    if (!PyUnicode_Check(o)) {
        PyErr_Format(PyExc_TypeError, "expected str, got %.200s", Py_TYPE(o)->tp_name);
        return -1;
    }
    if (PyUnicode_READY(o) < 0) return -1;
    t->kind = PyUnicode_KIND(o);
    t->data = PyUnicode_DATA(o);
    t->len = PyUnicode_GET_LENGTH(o);
    return 0;
}

static int check_nargs(const char *name, Py_ssize_t nargs, Py_ssize_t expected) {
    if (nargs == expected) return 0;
    PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", name, expected, nargs);
    return -1;
}

/* ---- class table ---- */

static PyObject *mark(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Text t;
    if (check_nargs("mark", nargs, 2) || get_text(args[0], &t)) return NULL;
    long bits = PyLong_AsLong(args[1]);
    if (bits == -1 && PyErr_Occurred()) return NULL;
    if (bits < 0 || bits > 0xFFFF) {
        PyErr_SetString(PyExc_ValueError, "mark: bits must fit in 16 bits");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < t.len; i++) classes[at(&t, i)] |= (uint16_t)bits;
    Py_RETURN_NONE;
}

static PyObject *code_points(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (check_nargs("code_points", nargs, 2)) return NULL;
    long start = PyLong_AsLong(args[0]), stop = PyLong_AsLong(args[1]);
    if (PyErr_Occurred()) return NULL;
    if (start < 0 || stop > N_CODE_POINTS || start > stop) {
        PyErr_SetString(PyExc_ValueError, "code_points: need 0 <= start <= stop <= 0x110000");
        return NULL;
    }
    PyObject *s = PyUnicode_New(stop - start, stop > start ? stop - 1 : 0);
    if (!s) return NULL;
    int kind = PyUnicode_KIND(s);
    void *data = PyUnicode_DATA(s);
    for (long c = start; c < stop; c++) PyUnicode_WRITE(kind, data, c - start, (Py_UCS4)c);
    return s;
}

/* ---- scans ---- */

/* Whether a char of `t` has one of the class bits. */
static int has_of(const Text *t, long bits) {
    int found = 0;
    FOR_EACH_CHAR(t, i, c, if (classes[c] & bits) { found = 1; break; })
    return found;
}

/* The text and class bits of a (text, bits) call; -1 with an exception set on a bad argument. */
static int text_and_bits(const char *name, PyObject *const *args, Py_ssize_t nargs, Text *t, long *bits) {
    if (check_nargs(name, nargs, 2) || get_text(args[0], t)) return -1;
    *bits = PyLong_AsLong(args[1]);
    return *bits == -1 && PyErr_Occurred() ? -1 : 0;
}

static PyObject *has(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Text t;
    long bits;
    if (text_and_bits("has", args, nargs, &t, &bits)) return NULL;
    return PyBool_FromLong(has_of(&t, bits));
}

static PyObject *count(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Text t;
    long bits;
    if (text_and_bits("count", args, nargs, &t, &bits)) return NULL;
    Py_ssize_t n = 0;
    FOR_EACH_CHAR(&t, i, c, n += (classes[c] & bits) != 0;)
    return PyLong_FromSsize_t(n);
}

typedef struct {
    Py_ssize_t cjk, space, punct, digit;
} ClassCounts;

static void class_counts_of(const Text *t, ClassCounts *k) {
    Py_ssize_t cjk = 0, space = 0, punct = 0, digit = 0;
    FOR_EACH_CHAR(t, i, c, {
        unsigned b = classes[c];
        cjk += (b & CJK) != 0;
        space += (b & SPACE) != 0;
        punct += (b & PUNCT) != 0;
        digit += (b & DIGIT) != 0;
    })
    k->cjk = cjk;
    k->space = space;
    k->punct = punct;
    k->digit = digit;
}

static PyObject *class_counts(PyObject *self, PyObject *arg) {
    Text t;
    ClassCounts k;
    if (get_text(arg, &t)) return NULL;
    class_counts_of(&t, &k);
    return Py_BuildValue("(nnnn)", k.cjk, k.space, k.punct, k.digit);
}

/* Count of the most frequent non-space character (0 when there is none). */
static Py_ssize_t top_of(const Text *t) {
    uint32_t top = 0;
    FOR_EACH_CHAR(t, i, c, {
        if (classes[c] & SPACE) continue;
        uint32_t v = ++char_counts[c];
        if (v > top) top = v;
    })
    FOR_EACH_CHAR(t, i, c, char_counts[c] = 0;)
    return (Py_ssize_t)top;
}

static PyObject *top_count(PyObject *self, PyObject *arg) {
    Text t;
    if (get_text(arg, &t)) return NULL;
    return PyLong_FromSsize_t(top_of(&t));
}

/*
 * Characters of the non-space text covered by a character n-gram that occurs more than once: the
 * `covered` sum of filters._reference_duplicate_ngram_char_fraction, for n >= 1. Both the first occurrence
 * and each repeat are covered. N-grams are found with a rolling hash in an open-addressing table and
 * compared in full on a hash match, so the count is exact. Returns -1 on memory error.
 */
static Py_ssize_t ngram_covered_of(const Text *t, Py_ssize_t n) {
    Py_ssize_t len = 0;
    FOR_EACH_CHAR(t, i, c, len += !(classes[c] & SPACE);)
    if (len / 2 < n) return 0; /* len < 2n: the reference returns 0.0 */
    Py_ssize_t windows = len - n + 1, covered_n = 0;
    size_t cap = 2;
    while (cap < 2 * (size_t)windows) cap <<= 1; /* load factor <= 0.5 */
    int shift = 64;
    for (size_t c = cap; c > 1; c >>= 1) shift--;
    /* One block: code points, covered flags, then per slot: hash, window index + 1 (0 = empty), first marked. */
    size_t bytes = (size_t)len * (sizeof(uint32_t) + 1) + cap * (sizeof(uint64_t) + sizeof(Py_ssize_t) + 1);
    uint64_t stack[2048]; /* 16 KiB: the whole block for texts of up to about 250 non-space chars */
    void *block = bytes <= sizeof(stack) ? memset(stack, 0, bytes) : calloc(bytes, 1);
    if (!block) return -1;
    uint64_t *hashes = block;
    Py_ssize_t *first = (Py_ssize_t *)(hashes + cap);
    uint32_t *s = (uint32_t *)(first + cap);
    uint8_t *covered = (uint8_t *)(s + len), *first_marked = covered + len;
    Py_ssize_t j = 0;
    FOR_EACH_CHAR(t, i, c, if (!(classes[c] & SPACE)) s[j++] = c;)
    const uint64_t base = 0x100000001B3ULL, mix = 0x9E3779B97F4A7C15ULL; /* FNV prime, 2^64 / golden ratio */
    uint64_t h = 0, top_power = 1; /* top_power = base^(n-1), the weight of the char leaving the window */
    for (Py_ssize_t k = 0; k < n; k++) h = h * base + s[k];
    for (Py_ssize_t k = 1; k < n; k++) top_power *= base;
    Py_ssize_t marked_to = 0; /* repeats come in increasing order: covered[:marked_to] is done for them */
    for (Py_ssize_t i = 0; i < windows; i++) {
        if (i > 0) h = (h - s[i - 1] * top_power) * base + s[i + n - 1];
        size_t slot = (size_t)((h * mix) >> shift);
        while (first[slot]) {
            if (hashes[slot] == h && memcmp(s + first[slot] - 1, s + i, (size_t)n * sizeof(uint32_t)) == 0) break;
            slot = (slot + 1) & (cap - 1);
        }
        if (!first[slot]) {
            first[slot] = i + 1;
            hashes[slot] = h;
            continue;
        }
        if (!first_marked[slot]) {
            memset(covered + first[slot] - 1, 1, (size_t)n);
            first_marked[slot] = 1;
        }
        Py_ssize_t from = i > marked_to ? i : marked_to;
        memset(covered + from, 1, (size_t)(i + n - from));
        marked_to = i + n;
    }
    for (Py_ssize_t k = 0; k < len; k++) covered_n += covered[k];
    if (block != stack) free(block);
    return covered_n;
}

static int get_n(PyObject *o, Py_ssize_t *n) {
    *n = PyLong_AsSsize_t(o);
    if (*n == -1 && PyErr_Occurred()) return -1;
    if (*n < 1) {
        PyErr_SetString(PyExc_ValueError, "n must be >= 1");
        return -1;
    }
    return 0;
}

static PyObject *ngram_covered(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Text t;
    Py_ssize_t n;
    if (check_nargs("ngram_covered", nargs, 2) || get_text(args[0], &t) || get_n(args[1], &n)) return NULL;
    Py_ssize_t covered = ngram_covered_of(&t, n);
    if (covered < 0) return PyErr_NoMemory();
    return PyLong_FromSsize_t(covered);
}

static PyObject *metrics(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Text t;
    Py_ssize_t n;
    ClassCounts k;
    if (check_nargs("metrics", nargs, 2) || get_text(args[0], &t) || get_n(args[1], &n)) return NULL;
    class_counts_of(&t, &k);
    Py_ssize_t top = top_of(&t);
    /* a repeated n-gram needs a repeated char: skip the hashing when every char is distinct */
    Py_ssize_t covered = top > 1 ? ngram_covered_of(&t, n) : 0;
    if (covered < 0) return PyErr_NoMemory();
    return Py_BuildValue("(nnnnnn)", k.cjk, k.space, k.punct, k.digit, top, covered);
}

/* The items of a str split at runs of separator characters (class bits `sep`): start and length of each.
 * Returns the number of items, or -1 on memory error; *items is `stack` or a malloc'ed array. */
static Py_ssize_t split_items(const Text *t, long sep, Py_ssize_t (**items)[2], Py_ssize_t (*stack)[2],
                              Py_ssize_t stack_len, unsigned *all) {
    Py_ssize_t n = 0, cap = stack_len;
    Py_ssize_t (*v)[2] = stack;
    unsigned or_all = 0;
    int in_item = 0;
    for (Py_ssize_t i = 0; i < t->len; i++) {
        unsigned b = classes[at(t, i)];
        or_all |= b;
        if (b & sep) {
            in_item = 0;
            continue;
        }
        if (in_item) {
            v[n - 1][1]++;
            continue;
        }
        if (n == cap) {
            Py_ssize_t (*grown)[2] = malloc(2 * (size_t)cap * sizeof(*v));
            if (!grown) {
                if (v != stack) free(v);
                return -1;
            }
            memcpy(grown, v, (size_t)n * sizeof(*v));
            if (v != stack) free(v);
            v = grown;
            cap *= 2;
        }
        v[n][0] = i;
        v[n][1] = 1;
        n++;
        in_item = 1;
    }
    *items = v;
    *all = or_all;
    return n;
}

/* Items of a line split at runs of separator characters (class bits `sep`): (count, chars in items, OR of all
 * class bits). re.split on `sep+`, or on filters._NAV_SPLIT, yields exactly these items plus empty strings. */
static void runs_of(const Text *t, long sep, Py_ssize_t *items_out, Py_ssize_t *chars_out, unsigned *all_out) {
    Py_ssize_t items = 0, chars = 0;
    unsigned all = 0;
    int in_item = 0;
    FOR_EACH_CHAR(t, i, c, {
        unsigned b = classes[c];
        all |= b;
        if (b & sep) {
            in_item = 0;
        } else {
            chars++;
            items += !in_item;
            in_item = 1;
        }
    })
    *items_out = items;
    *chars_out = chars;
    *all_out = all;
}

static PyObject *runs(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Text t;
    if (check_nargs("runs", nargs, 2) || get_text(args[0], &t)) return NULL;
    long sep = PyLong_AsLong(args[1]);
    if (sep == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t items, chars;
    unsigned all;
    runs_of(&t, sep, &items, &chars, &all);
    return Py_BuildValue("(nnI)", items, chars, all);
}

/* Whether item b (start, length) of `t` contains item a. */
static int item_contains(const Text *t, const Py_ssize_t b[2], const Py_ssize_t a[2]) {
    for (Py_ssize_t s = b[0]; s + a[1] <= b[0] + b[1]; s++) {
        Py_ssize_t k = 0;
        while (k < a[1] && at(t, s + k) == at(t, a[0] + k)) k++;
        if (k == a[1]) return 1;
    }
    return 0;
}

/* filters._reference_is_seo_spam_line: 4+ items (split at SEO_SEP runs), no SENT_END char, and an item of
 * 2+ chars contained in 3+ items (itself included, repeats counted). */
static int seo_spam_of(const Text *t) {
    Py_ssize_t stack[64][2], (*items)[2];
    unsigned all;
    Py_ssize_t n = split_items(t, SEO_SEP, &items, stack, 64, &all);
    if (n < 0) return -1;
    int spam = 0;
    if (n >= 4 && !(all & SENT_END)) {
        /* An item inside 3+ items has its first two chars at 3+ places of the line: count the chars of the items
         * (char_counts, zeroed again below) and skip the items whose first or second char occurs fewer times. */
        for (Py_ssize_t k = 0; k < n; k++)
            for (Py_ssize_t j = items[k][0]; j < items[k][0] + items[k][1]; j++) char_counts[at(t, j)]++;
        for (Py_ssize_t i = 0; i < n && !spam; i++) {
            if (items[i][1] < 2 || char_counts[at(t, items[i][0])] < 3 || char_counts[at(t, items[i][0] + 1)] < 3)
                continue;
            int hits = 0;
            for (Py_ssize_t k = 0; k < n && hits < 3; k++) hits += item_contains(t, items[k], items[i]);
            spam = hits >= 3;
        }
        for (Py_ssize_t k = 0; k < n; k++)
            for (Py_ssize_t j = items[k][0]; j < items[k][0] + items[k][1]; j++) char_counts[at(t, j)] = 0;
    }
    if (items != stack) free(items);
    return spam;
}

static PyObject *seo_spam(PyObject *self, PyObject *arg) {
    Text t;
    if (get_text(arg, &t)) return NULL;
    int spam = seo_spam_of(&t);
    if (spam < 0) return PyErr_NoMemory();
    return PyBool_FromLong(spam);
}

/* Whether normalize._reference_normalize_whitespace returns the text unchanged: no tab, U+3000 or U+00A0
 * (replaced by a space), no double space, and every line non-empty, neither starting nor ending with whitespace. */
static int whitespace_is_normal_of(const Text *t) {
    if (t->len == 0) return 1;
    int line_start = 1, prev_space = 0, normal = 1;
    uint32_t prev = 0;
    FOR_EACH_CHAR(t, i, c, {
        if (c == '\n') {
            if (line_start || prev_space) { normal = 0; break; }
            line_start = 1;
            prev_space = 0;
        } else {
            int space = (classes[c] & SPACE) != 0;
            if (c == '\t' || c == 0x3000 || c == 0xA0 || (c == ' ' && prev == ' ') || (line_start && space)) {
                normal = 0;
                break;
            }
            line_start = 0;
            prev_space = space;
        }
        prev = c;
    })
    return normal && !line_start && !prev_space;
}

static PyObject *whitespace_is_normal(PyObject *self, PyObject *arg) {
    Text t;
    if (get_text(arg, &t)) return NULL;
    return PyBool_FromLong(whitespace_is_normal_of(&t));
}

/* Whether the char at i is a space (U+0020) between two chars having one of `bits`. */
static inline int space_between(const Text *t, Py_ssize_t i, long bits) {
    return i > 0 && i + 1 < t->len && at(t, i) == ' ' && (classes[at(t, i - 1)] & bits) && (classes[at(t, i + 1)] & bits);
}

/* drop_spaces_between(text, bits): text without the spaces between two chars having one of `bits`
 * (normalize._SPACE_BETWEEN_CJK, whose lookarounds read the original text); the text itself when there is none. */
static PyObject *drop_spaces_between(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Text t;
    if (check_nargs("drop_spaces_between", nargs, 2) || get_text(args[0], &t)) return NULL;
    long bits = PyLong_AsLong(args[1]);
    if (bits == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t dropped = 0;
    for (Py_ssize_t i = 1; i + 1 < t.len; i++) dropped += space_between(&t, i, bits);
    if (!dropped) return Py_NewRef(args[0]);
    /* only spaces go, so the widest char stays and the result has the text's kind */
    PyObject *out = PyUnicode_New(t.len - dropped, PyUnicode_MAX_CHAR_VALUE(args[0]));
    if (!out) return NULL;
    int kind = PyUnicode_KIND(out);
    void *data = PyUnicode_DATA(out);
    for (Py_ssize_t i = 0, j = 0; i < t.len; i++)
        if (!space_between(&t, i, bits)) PyUnicode_WRITE(kind, data, j++, at(&t, i));
    return out;
}

/* Which of filters._URL / _EMAIL / _PHONE could match: "://" or "www." (only w and W match w under re.I);
 * an '@'; at least MIN_PHONE_DIGITS decimal digits with "1[3-9]\d" (mobile) or 7 digits in a row (landline).
 * Deleting matches creates none of these, so the answer for the text holds for each pattern of
 * filters.scrub_private in turn. */
static long private_candidates_of(const Text *t) {
    long found = 0;
    Py_ssize_t digits = 0, run = 0;
    int phone_start = 0;
    uint32_t p1 = 0, p2 = 0, p3 = 0; /* the three chars before c */
    FOR_EACH_CHAR(t, i, c, {
        if (classes[c] & DIGIT) {
            digits++;
            run++;
            phone_start |= run >= 7 || (p2 == '1' && p1 >= '3' && p1 <= '9');
        } else {
            run = 0;
            if (c == '@')
                found |= MAY_EMAIL;
            else if ((c == '/' && p1 == '/' && p2 == ':') ||
                     (c == '.' && (p1 | 0x20) == 'w' && (p2 | 0x20) == 'w' && (p3 | 0x20) == 'w'))
                found |= MAY_URL;
        }
        p3 = p2;
        p2 = p1;
        p1 = c;
    })
    if (digits >= MIN_PHONE_DIGITS && phone_start) found |= MAY_PHONE;
    return found;
}

static PyObject *private_candidates(PyObject *self, PyObject *arg) {
    Text t;
    if (get_text(arg, &t)) return NULL;
    return PyLong_FromLong(private_candidates_of(&t));
}

/* ---- keyword groups ---- */

#define N_SLOTS 4
#define MAX_GROUP_CHARS 64 /* one bit of a uint64 mask per distinct character */
#define SLOT_CHAR 2048     /* class bit of the chars of slot 0's groups; slot k uses SLOT_CHAR << k */

typedef struct {
    uint32_t chars[MAX_GROUP_CHARS]; /* sorted; ids[k] is the bit of chars[k] */
    uint8_t ids[MAX_GROUP_CHARS];
    int n_chars;
    uint64_t *masks;
    Py_ssize_t n_masks;
    int set;
} GroupSlot;

static GroupSlot slots[N_SLOTS];

static int char_index(const GroupSlot *g, uint32_t c) {
    int lo = 0, hi = g->n_chars - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (g->chars[mid] == c) return mid;
        if (g->chars[mid] < c) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
}

static int get_slot(PyObject *o) {
    long slot = PyLong_AsLong(o);
    if (slot == -1 && PyErr_Occurred()) return -1;
    if (slot < 0 || slot >= N_SLOTS) {
        PyErr_Format(PyExc_ValueError, "slot must be in [0, %d)", N_SLOTS);
        return -1;
    }
    return (int)slot;
}

/* set_groups(slot, groups): a group's mask holds the bits of its characters; the first 64 distinct
 * characters get a bit, later ones are left out of the masks (a weaker but still necessary condition).
 * The chars with a bit are also marked with the slot's class bit, a quick filter for groups_present
 * (marks of an earlier set_groups stay: the filter only skips chars that are in no group). */
static PyObject *set_groups(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (check_nargs("set_groups", nargs, 2)) return NULL;
    int slot = get_slot(args[0]);
    if (slot < 0) return NULL;
    if (!PyTuple_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "set_groups: groups must be a tuple of str");
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(args[1]);
    GroupSlot g = {.n_chars = 0, .n_masks = n, .set = 1};
    uint32_t order[MAX_GROUP_CHARS]; /* characters in order of first appearance, id = position */
    g.masks = calloc(n ? (size_t)n : 1, sizeof(uint64_t));
    if (!g.masks) return PyErr_NoMemory();
    for (Py_ssize_t k = 0; k < n; k++) {
        Text t;
        if (get_text(PyTuple_GET_ITEM(args[1], k), &t)) {
            free(g.masks);
            return NULL;
        }
        for (Py_ssize_t i = 0; i < t.len; i++) {
            uint32_t c = at(&t, i);
            int id = -1;
            for (int m = 0; m < g.n_chars; m++)
                if (order[m] == c) id = m;
            if (id < 0 && g.n_chars < MAX_GROUP_CHARS) {
                id = g.n_chars;
                order[g.n_chars++] = c;
            }
            if (id >= 0) g.masks[k] |= (uint64_t)1 << id;
        }
    }
    for (int m = 0; m < g.n_chars; m++) { /* insertion sort of (char, id) by char */
        int p = m;
        while (p > 0 && g.chars[p - 1] > order[m]) {
            g.chars[p] = g.chars[p - 1];
            g.ids[p] = g.ids[p - 1];
            p--;
        }
        g.chars[p] = order[m];
        g.ids[p] = (uint8_t)m;
        classes[order[m]] |= SLOT_CHAR << slot;
    }
    free(slots[slot].masks);
    slots[slot] = g;
    Py_RETURN_NONE;
}

/* The slot of argument `o`, which set_groups must have filled; -1 with an exception otherwise. */
static int get_set_slot(const char *name, PyObject *o) {
    int slot = get_slot(o);
    if (slot >= 0 && !slots[slot].set) {
        PyErr_Format(PyExc_RuntimeError, "%s: slot not set", name);
        return -1;
    }
    return slot;
}

static int groups_present_of(const Text *t, int slot) {
    const GroupSlot *g = &slots[slot];
    const unsigned bit = SLOT_CHAR << slot;
    uint64_t present = 0;
    FOR_EACH_CHAR(t, i, c, {
        if (!(classes[c] & bit)) continue;
        int k = char_index(g, c);
        if (k >= 0) present |= (uint64_t)1 << g->ids[k];
    })
    for (Py_ssize_t k = 0; k < g->n_masks; k++)
        if ((g->masks[k] & present) == g->masks[k]) return 1;
    return 0;
}

static PyObject *groups_present(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Text t;
    if (check_nargs("groups_present", nargs, 2) || get_text(args[0], &t)) return NULL;
    int slot = get_set_slot("groups_present", args[1]);
    if (slot < 0) return NULL;
    return PyBool_FromLong(groups_present_of(&t, slot));
}

/* ---- whole-step fast paths ---- */

/* is_clean(text, bits): no char has one of the class bits and whitespace_is_normal(text): the test by which
 * steps.Normalize leaves a document as it is (bits: the triggers of its enabled normalisations). */
static PyObject *is_clean(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Text t;
    long bits;
    if (text_and_bits("is_clean", args, nargs, &t, &bits)) return NULL;
    return PyBool_FromLong(!has_of(&t, bits) && whitespace_is_normal_of(&t));
}

/* The line t[a..b) as a Text of its own (same kind, data moved to a). */
static inline Text sub_text(const Text *t, Py_ssize_t a, Py_ssize_t b) {
    return (Text){t->kind, (const char *)t->data + a * t->kind, b - a};
}

/*
 * line_rules_may_apply(text, rules, spam_slot, boilerplate_slot, boilerplate_max_chars): whether any rule of
 * steps.LineRules.clean that `rules` (RULE_* bits) turns on could remove or change anything in `text`. When
 * it returns False, clean() would only drop the spaces between CJK characters. Each test is a necessary
 * condition of its rule: a private-data candidate or whitespace that normalize_whitespace changes (RULE_PRIVATE);
 * all characters of a spam keyword somewhere in the text (RULE_SPAM); per line, a line of at most
 * boilerplate_max_chars holding the required characters of a boilerplate pattern (RULE_BOILERPLATE), a
 * navigation line exactly as filters.is_navigation_line (RULE_NAVIGATION) or an SEO-spam line exactly as
 * filters.is_seo_spam_line (RULE_SEO). Raises MemoryError when a long line's items cannot be allocated.
 */
static PyObject *line_rules_may_apply(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Text t;
    if (check_nargs("line_rules_may_apply", nargs, 5) || get_text(args[0], &t)) return NULL;
    long rules = PyLong_AsLong(args[1]);
    if (rules == -1 && PyErr_Occurred()) return NULL;
    int spam_slot = get_set_slot("line_rules_may_apply", args[2]);
    if (spam_slot < 0) return NULL;
    int boiler_slot = get_set_slot("line_rules_may_apply", args[3]);
    if (boiler_slot < 0) return NULL;
    Py_ssize_t boiler_max = PyLong_AsSsize_t(args[4]);
    if (boiler_max == -1 && PyErr_Occurred()) return NULL;
    if ((rules & RULE_PRIVATE) && (private_candidates_of(&t) || !whitespace_is_normal_of(&t))) Py_RETURN_TRUE;
    if ((rules & RULE_SPAM) && groups_present_of(&t, spam_slot)) Py_RETURN_TRUE;
    if (!(rules & (RULE_BOILERPLATE | RULE_NAVIGATION | RULE_SEO))) Py_RETURN_FALSE;
    Py_ssize_t a = 0;
    while (a <= t.len) { /* each line t[a..b), as text.split("\n") gives them */
        Py_ssize_t b = a;
        while (b < t.len && at(&t, b) != '\n') b++;
        Text line = sub_text(&t, a, b);
        if ((rules & RULE_BOILERPLATE) && line.len <= boiler_max && groups_present_of(&line, boiler_slot)) Py_RETURN_TRUE;
        if (rules & RULE_NAVIGATION) { /* filters.is_navigation_line: 4+ items of <= 4 chars on average, no sentence end */
            Py_ssize_t items, chars;
            unsigned all;
            runs_of(&line, NAV_SEP, &items, &chars, &all);
            if (!(all & SENT_END) && items >= 4 && chars <= 4 * items) Py_RETURN_TRUE;
        }
        if (rules & RULE_SEO) {
            int spam = seo_spam_of(&line);
            if (spam < 0) return PyErr_NoMemory();
            if (spam) Py_RETURN_TRUE;
        }
        a = b + 1;
    }
    Py_RETURN_FALSE;
}

static PyMethodDef methods[] = {
    {"mark", (PyCFunction)(void (*)(void))mark, METH_FASTCALL, "mark(chars, bits): OR class bits into each char's entry."},
    {"code_points", (PyCFunction)(void (*)(void))code_points, METH_FASTCALL,
     "code_points(start, stop) -> the str of code points start..stop-1 (surrogates included)."},
    {"has", (PyCFunction)(void (*)(void))has, METH_FASTCALL, "has(text, bits) -> whether a char has one of the class bits."},
    {"count", (PyCFunction)(void (*)(void))count, METH_FASTCALL, "count(text, bits) -> chars having one of the class bits."},
    {"class_counts", class_counts, METH_O, "class_counts(text) -> (CJK, SPACE, PUNCT, DIGIT) char counts."},
    {"top_count", top_count, METH_O, "top_count(text) -> count of the most frequent non-space char (0 if none)."},
    {"ngram_covered", (PyCFunction)(void (*)(void))ngram_covered, METH_FASTCALL,
     "ngram_covered(text, n) -> non-space chars inside repeated char n-grams (0 when fewer than 2n)."},
    {"metrics", (PyCFunction)(void (*)(void))metrics, METH_FASTCALL,
     "metrics(text, n) -> class_counts(text) + (top_count(text), ngram_covered(text, n))."},
    {"runs", (PyCFunction)(void (*)(void))runs, METH_FASTCALL,
     "runs(text, sep_bits) -> (items, chars in items, OR of all class bits)."},
    {"seo_spam", seo_spam, METH_O, "seo_spam(line) -> filters.is_seo_spam_line(line)."},
    {"drop_spaces_between", (PyCFunction)(void (*)(void))drop_spaces_between, METH_FASTCALL,
     "drop_spaces_between(text, bits) -> text without the spaces between two chars having one of the bits."},
    {"whitespace_is_normal", whitespace_is_normal, METH_O,
     "whitespace_is_normal(text) -> True when normalize_whitespace would return text unchanged."},
    {"private_candidates", private_candidates, METH_O,
     "private_candidates(text) -> MAY_URL | MAY_EMAIL | MAY_PHONE bits of the patterns that could match."},
    {"set_groups", (PyCFunction)(void (*)(void))set_groups, METH_FASTCALL,
     "set_groups(slot, groups): store groups (tuple of str) of required characters in a slot."},
    {"groups_present", (PyCFunction)(void (*)(void))groups_present, METH_FASTCALL,
     "groups_present(text, slot) -> whether all chars of at least one group of the slot occur in text."},
    {"is_clean", (PyCFunction)(void (*)(void))is_clean, METH_FASTCALL,
     "is_clean(text, bits) -> no char has one of the class bits and whitespace_is_normal(text)."},
    {"line_rules_may_apply", (PyCFunction)(void (*)(void))line_rules_may_apply, METH_FASTCALL,
     "line_rules_may_apply(text, rules, spam_slot, boilerplate_slot, boilerplate_max_chars) -> whether a line rule "
     "could change text."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_textscan", "Character scans of the corpus cleaning rules.",
                                    -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__textscan(void) {
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    static const struct { const char *name; long value; } constants[] = {
        {"SPACE", SPACE}, {"DIGIT", DIGIT}, {"PUNCT", PUNCT}, {"CJK", CJK}, {"CONTROL", CONTROL},
        {"NFKC", NFKC}, {"T2S", T2S}, {"SENT_END", SENT_END}, {"NAV_SEP", NAV_SEP}, {"SEO_SEP", SEO_SEP}, {"CJK_STOP", CJK_STOP}, {"HTML", HTML},
        {"RULE_PRIVATE", RULE_PRIVATE}, {"RULE_SPAM", RULE_SPAM}, {"RULE_BOILERPLATE", RULE_BOILERPLATE},
        {"RULE_NAVIGATION", RULE_NAVIGATION}, {"RULE_SEO", RULE_SEO},
        {"MAY_URL", MAY_URL}, {"MAY_EMAIL", MAY_EMAIL}, {"MAY_PHONE", MAY_PHONE},
    };
    for (size_t i = 0; i < sizeof(constants) / sizeof(constants[0]); i++)
        if (PyModule_AddIntConstant(m, constants[i].name, constants[i].value) < 0) {
            Py_DECREF(m);
            return NULL;
        }
    return m;
}
