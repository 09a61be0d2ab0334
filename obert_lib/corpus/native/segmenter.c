/*
 * _segmenter: Chinese word segmentation and POS tagging in C, giving the same
 * output as `Jieba::tag(text, hmm=true)` of jieba-rs 0.11 (the Rust port of Sun
 * Junyi's jieba, wrapped by rjieba 0.2.2), but as code-point offsets.
 *
 * Algorithm (jieba's, as jieba-rs implements it):
 *   1. The text is split into maximal runs of "han" characters (CJK ideographs,
 *      ASCII letters and digits, and `+#&._%-`) and runs of everything else.
 *      A non-han run yields one token per character, "\r\n" being one token.
 *   2. For a han run, every dictionary word starting at every character is
 *      found by walking the dictionary trie; the best route is the split that
 *      maximises the sum of log(freq) - log(total) over its words (a character
 *      that starts no word counts as freq 1), computed right to left; ties go
 *      to the longer word.
 *   3. Words of the route are emitted as they are. Consecutive one-character
 *      steps are gathered; a gathered run of one character, or whose whole
 *      string is a dictionary word, is emitted character by character, any
 *      other goes to the HMM: its runs of U+4E00..U+9FD5 are cut by Viterbi
 *      over the B/E/M/S states of jieba's finalseg model, and the rest is split
 *      into alphanumeric tokens (runs joined by single `.`, `_`, `-`, with an
 *      optional trailing `%`) and the gaps between them.
 *   4. A token that is a dictionary word gets the dictionary's tag. Any other
 *      gets "m" when its ASCII alphanumerics are all digits, "eng" when it has
 *      a letter, otherwise (when it holds a CJK character) the tag of the
 *      longest span (last on ties, in UTF-8 bytes) that Viterbi over jieba's
 *      posseg model (4 positions x 64 POS tags) finds in it, else "x".
 *
 * Data layout:
 *   - Trie over code points. Node 0 is the root; its transitions for BMP
 *     characters sit in a directly indexed table (ROOT_LEN entries), all other
 *     transitions in one open-addressing (linear probing, Fibonacci hashing)
 *     table keyed by (parent node, char), with a parallel byte array of key
 *     fingerprints so that the many failing probes stay in a 1 MB array. A
 *     transition (Edge) holds the child node (HAS_KIDS flag in its top bit, so
 *     a walk stops without probing when nothing can follow) and, when the path
 *     spells a dictionary word, its record id, tag id and ln(freq): a walk has
 *     everything step 2 and step 4 need without another memory access.
 *   - Records: one per dictionary line plus one per added word (ids are stable;
 *     a repeated word maps to its last record), holding the frequency and the
 *     word's code points in a shared pool.
 *   - finalseg HMM: start/transition log-probs and a direct table of emission
 *     log-probs for U+4E00..U+9FD5 (MIN_FLOAT where jieba has none), which the
 *     Python side rounds to 6 decimals as in the model jieba-rs embeds.
 *   - posseg HMM: state = position * n_tags + tag (positions B=0 M=1 E=2 S=3,
 *     tags sorted); dense transposed transition matrix; per character a row of
 *     (state, emission) pairs, ascending by state: the states of jieba's
 *     char_state_tab, or when it has none, the states with an emission. Tags
 *     it gave recent words are cached by word.
 * All probabilities are natural logarithms, added in the same order as
 * jieba-rs adds them so that ties resolve identically.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "huge_alloc.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* jieba's log-probability of the impossible; anything added to it stays there. */
#define MIN_FLOAT (-3.14e100)
#define NO_WORD (-1)
/* Set on a child pointer whose node has children. */
#define HAS_KIDS 0x80000000u
/* BMP characters have a direct root transition. */
#define ROOT_LEN 0x10000u
/* A code point fits in 21 bits, which leaves the rest of a 64-bit key for the parent. */
#define CHAR_BITS 21
/* Fibonacci hashing multiplier (2^64 / golden ratio). */
#define HASH_MUL 0x9E3779B97F4A7C15ull
/* The trie's hash table is kept at most 3/4 full. */
#define LOAD_NUM 3
#define LOAD_DEN 4

/* finalseg states in jieba's order (alphabetical): Viterbi ties go to the larger index. */
enum { HB = 0, HE = 1, HM = 2, HS = 3 };
/* The characters jieba's finalseg HMM runs on. */
#define HMM_HAN_MIN 0x4E00u
#define HMM_HAN_MAX 0x9FD5u
#define HMM_SPAN (HMM_HAN_MAX - HMM_HAN_MIN + 1)
/* States that may precede each finalseg state, smaller index first. */
static const uint8_t HMM_PREV[4][2] = {{HE, HS}, {HB, HM}, {HB, HM}, {HE, HS}};

/* posseg positions. */
enum { PB = 0, PM = 1, PE = 2, PS = 3 };

/* ------------------------------------------------------------------ buffers */

/* Make room for `need` elements of `size` bytes in the array whose pointer is
 * at `slot` (capacity *cap); the pointer is copied bytewise, whatever its type. */
static int reserve(void *slot, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *buf;
    memcpy(&buf, slot, sizeof buf);
    buf = PyMem_Realloc(buf, n * size);
    if (!buf) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(slot, &buf, sizeof buf);
    *cap = n;
    return 0;
}

#define RESERVE(buf, cap, need) reserve(&(buf), &(cap), (need), sizeof *(buf))

/* ------------------------------------------------------------ char classes */

static inline int is_alnum(uint32_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline int is_cjk_main(uint32_t c) { return c >= 0x4E00 && c <= 0x9FFF; }

/* The CJK Unified Ideographs ranges jieba-rs counts besides the main block. */
static inline int is_cjk_ext(uint32_t c)
{
    return (c >= 0x3400 && c <= 0x4DBF) || (c >= 0xF900 && c <= 0xFAFF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0x2CEB0 && c <= 0x2EBEF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* jieba's RE_HAN_DEFAULT class: CJK, ASCII alphanumerics and `+#&._%-`. */
static inline int is_han(uint32_t c)
{
    if (is_cjk_main(c))
        return 1;
    if (c < 0x80)
        return is_alnum(c) || c == '+' || c == '#' || c == '&' || c == '.' || c == '_' ||
               c == '%' || c == '-';
    return is_cjk_ext(c);
}

static inline int is_hmm_han(uint32_t c) { return c >= HMM_HAN_MIN && c <= HMM_HAN_MAX; }

/* Characters that join two alphanumeric runs into one HMM-stage token. */
static inline int is_connector(uint32_t c) { return c == '.' || c == '_' || c == '-'; }

static inline int utf8_len(uint32_t c) { return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4; }

/* --------------------------------------------------------------------- trie */

/* A transition: where it leads and, when the path so far spells a word, that word. */
typedef struct {
    double lf;      /* ln(freq) of the word, beside the transition for the route's sake */
    uint32_t child; /* child node, HAS_KIDS set once it has children; 0: none (root table) */
    int32_t word;   /* record id, or NO_WORD */
    int32_t tag;    /* the record's tag id */
} Edge;

typedef struct {
    uint64_t key; /* (parent << CHAR_BITS) | char */
    Edge e;
} Slot;

typedef struct {
    Edge *root; /* ROOT_LEN transitions out of the root */
    Slot *slots;
    uint8_t *fp; /* per slot, a byte of its key's hash (never 0) or 0 when empty: most probes
                    fail, and this small array settles them without touching the slots */
    size_t mask; /* number of slots - 1 (a power of two) */
    size_t used;
    int shift; /* 64 - log2(number of slots) */
    uint32_t next_node;
} Trie;

static inline uint64_t slot_key(uint32_t parent, uint32_t ch)
{
    return ((uint64_t)parent << CHAR_BITS) | ch;
}

/* Where the probe for `key` starts. */
static inline size_t slot_home(const Trie *t, uint64_t key) { return (size_t)((key * HASH_MUL) >> t->shift); }

/* The fingerprint of `key`: the 8 hash bits below those of slot_home, 0 made 1. */
static inline uint8_t slot_fp(const Trie *t, uint64_t key)
{
    uint8_t f = (uint8_t)((key * HASH_MUL) >> (t->shift - 8));
    return f ? f : 1;
}

/* Index of the slot holding `key`, or of the empty slot where it would go. */
static inline size_t slot_find(const Trie *t, uint64_t key)
{
    size_t i = slot_home(t, key);
    uint8_t f = slot_fp(t, key);
    while (t->fp[i] && (t->fp[i] != f || t->slots[i].key != key))
        i = (i + 1) & t->mask;
    return i;
}

/* The transition from `node` (HAS_KIDS clear) by `ch`, or NULL. */
static inline Edge *trie_step(const Trie *t, uint32_t node, uint32_t ch)
{
    if (node == 0 && ch < ROOT_LEN)
        return t->root[ch].child ? &t->root[ch] : NULL;
    size_t i = slot_find(t, slot_key(node, ch));
    return t->fp[i] ? &t->slots[i].e : NULL;
}

/* The transition that ends the dictionary word w[0..n), or NULL if it is not one. */
static Edge *trie_word(const Trie *t, const uint32_t *w, Py_ssize_t n)
{
    Edge *e = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i > 0 && !(e->child & HAS_KIDS))
            return NULL;
        e = trie_step(t, i ? e->child & ~HAS_KIDS : 0, w[i]);
        if (!e)
            return NULL;
    }
    return e && e->word != NO_WORD ? e : NULL;
}

/* The record id of the word w[0..n), or NO_WORD. */
static inline int32_t trie_get(const Trie *t, const uint32_t *w, Py_ssize_t n)
{
    const Edge *e = trie_word(t, w, n);
    return e ? e->word : NO_WORD;
}

static int trie_init(Trie *t, size_t slots_log2)
{
    t->root = huge_alloc(ROOT_LEN * sizeof *t->root, 0);
    t->slots = huge_alloc(((size_t)1 << slots_log2) * sizeof *t->slots, 0);
    t->fp = huge_alloc((size_t)1 << slots_log2, 1);
    if (!t->root || !t->slots || !t->fp) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < ROOT_LEN; i++)
        t->root[i] = (Edge){0.0, 0, NO_WORD, 0};
    t->mask = ((size_t)1 << slots_log2) - 1;
    t->shift = 64 - (int)slots_log2;
    t->used = 0;
    t->next_node = 1;
    return 0;
}

static void trie_free(Trie *t)
{
    free(t->root);
    free(t->slots);
    free(t->fp);
    t->root = NULL;
    t->slots = NULL;
    t->fp = NULL;
}

/* Make room for `extra` more slots within the load limit. */
static int trie_reserve(Trie *t, size_t extra)
{
    size_t n = t->mask + 1;
    if ((t->used + extra) * LOAD_DEN <= n * LOAD_NUM)
        return 0;
    while ((t->used + extra) * LOAD_DEN > n * LOAD_NUM)
        n *= 2;
    Slot *old = t->slots, *slots = huge_alloc(n * sizeof *slots, 0);
    uint8_t *old_fp = t->fp, *fp = huge_alloc(n, 1);
    if (!slots || !fp) {
        free(slots);
        free(fp);
        PyErr_NoMemory();
        return -1;
    }
    size_t old_n = t->mask + 1;
    t->slots = slots;
    t->fp = fp;
    t->mask = n - 1;
    t->shift = 64;
    for (size_t m = n; m > 1; m >>= 1)
        t->shift--;
    for (size_t i = 0; i < old_n; i++)
        if (old_fp[i]) {
            size_t j = slot_find(t, old[i].key);
            t->slots[j] = old[i];
            t->fp[j] = slot_fp(t, old[i].key);
        }
    free(old);
    free(old_fp);
    return 0;
}

/* The transition ending w[0..n) (n >= 1), created with its nodes as needed; NULL on error. */
static Edge *trie_insert(Trie *t, const uint32_t *w, Py_ssize_t n)
{
    if (trie_reserve(t, (size_t)n) < 0) /* no rehash below, so edge pointers stay valid */
        return NULL;
    uint32_t node = 0;
    Edge *e = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t ch = w[i];
        Edge *parent = e;
        if (node == 0 && ch < ROOT_LEN) {
            e = &t->root[ch];
        } else {
            if (parent)
                parent->child |= HAS_KIDS;
            uint64_t key = slot_key(node, ch);
            size_t j = slot_find(t, key);
            if (!t->fp[j]) {
                t->slots[j] = (Slot){key, {0.0, 0, NO_WORD, 0}};
                t->fp[j] = slot_fp(t, key);
                t->used++;
            }
            e = &t->slots[j].e;
        }
        if (e->child == 0) {
            if (t->next_node >= HAS_KIDS) {
                PyErr_SetString(PyExc_OverflowError, "too many dictionary trie nodes");
                return NULL;
            }
            e->child = t->next_node++;
        }
        node = e->child & ~HAS_KIDS;
    }
    return e;
}

/* -------------------------------------------------------------------- model */

typedef struct {
    uint64_t freq;
    size_t off;   /* of the word, into the pool */
    uint32_t len; /* code points */
} Record;

typedef struct {
    double prob; /* best log-probability of the rest of the block from here */
    int32_t end; /* the character after the chosen word */
    const Edge *word; /* the chosen word, NULL for a character that starts none */
} Route;

typedef struct {
    int32_t start, end, tag, rec;
} Tok;

typedef struct {
    double em;
    uint32_t state;
} PState;

typedef struct {
    uint32_t start, len; /* a range of p_states */
} PRow;

typedef struct {
    uint32_t ch, row;
} AstralRow;

/* A cached posseg tag of an out-of-vocabulary word (see guess_tag). */
typedef struct {
    uint64_t hash;
    size_t off;   /* of the word, into oov_pool */
    uint32_t len; /* 0: empty slot */
    int32_t tag;
} OovEntry;

/* A live posseg Viterbi state: its score and the state it came from. */
typedef struct {
    double score;
    uint32_t state, back;
} Cand;

typedef struct {
    PyObject_HEAD
    int loaded;
    Trie trie;
    Record *rec;
    size_t n_rec, rec_cap;
    uint32_t *pool;
    size_t pool_len, pool_cap;
    uint64_t total;
    double log_total;
    PyObject *tag_list; /* tag id -> str */
    PyObject *tag_ids;  /* str -> tag id */
    int32_t tag_eng, tag_m, tag_x;
    /* finalseg */
    double h_start[4], h_trans[4][4];
    double (*h_emit)[4]; /* HMM_SPAN rows */
    /* posseg */
    int p_ntags, p_nstates;
    int32_t *p_tag; /* posseg tag -> tag id */
    double *p_start, *p_trans; /* p_trans[to * p_nstates + from] */
    PState *p_states;
    PRow *p_rows;   /* row 0 is empty */
    uint16_t *p_index; /* BMP char -> row */
    AstralRow *p_astral;
    size_t p_nastral;
    /* posseg tags of recent out-of-vocabulary words */
    OovEntry *oov;
    size_t oov_used;
    uint32_t *oov_pool;
    size_t oov_pool_len, oov_pool_cap;
    /* scratch */
    uint32_t *cp;
    size_t cp_cap;
    Route *route;
    size_t route_cap;
    Tok *tok;
    size_t tok_len, tok_cap;
    uint8_t *h_buf;
    size_t h_buf_cap;
    Cand *cand;
    size_t cand_cap;
    size_t *step;
    size_t step_cap;
    uint32_t *path;
    size_t path_cap;
} Model;

/* The id of tag `name`, adding it when new. */
static int32_t intern_tag(Model *m, PyObject *name)
{
    PyObject *id = PyDict_GetItemWithError(m->tag_ids, name);
    if (id)
        return (int32_t)PyLong_AsLong(id);
    if (PyErr_Occurred())
        return -1;
    Py_ssize_t n = PyList_GET_SIZE(m->tag_list);
    id = PyLong_FromSsize_t(n);
    if (!id)
        return -1;
    int err = PyDict_SetItem(m->tag_ids, name, id) < 0 || PyList_Append(m->tag_list, name) < 0;
    Py_DECREF(id);
    return err ? -1 : (int32_t)n;
}

static int32_t intern_tag_utf8(Model *m, const char *s, Py_ssize_t n)
{
    PyObject *name = PyUnicode_DecodeUTF8(s, n, "strict");
    if (!name)
        return -1;
    int32_t id = intern_tag(m, name);
    Py_DECREF(name);
    return id;
}

/* Append a record for the n (>= 1) code points the caller wrote at the end of
 * the pool and count its frequency in the total. A word already in the trie
 * keeps its record and tag, as in jieba-rs, and only takes the new frequency;
 * the new record is then an alias, so that ids stay dictionary line numbers. */
static int push_record(Model *m, Py_ssize_t n, uint64_t freq, int32_t tag)
{
    if (m->n_rec >= (size_t)INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "too many dictionary records");
        return -1;
    }
    if (RESERVE(m->rec, m->rec_cap, m->n_rec + 1) < 0)
        return -1;
    int32_t id = (int32_t)m->n_rec;
    Edge *e = trie_word(&m->trie, m->pool + m->pool_len, n);
    if (e) {
        m->total -= m->rec[e->word].freq;
        m->rec[e->word].freq = freq;
    } else {
        if (!(e = trie_insert(&m->trie, m->pool + m->pool_len, n)))
            return -1;
        e->word = id;
        e->tag = tag;
    }
    e->lf = log((double)freq);
    m->total += freq;
    m->rec[id] = (Record){freq, m->pool_len, (uint32_t)n};
    m->pool_len += (size_t)n;
    m->n_rec++;
    return 0;
}

/* ----------------------------------------------------------- posseg Viterbi */

static inline PRow p_row(const Model *m, uint32_t ch)
{
    if (ch < ROOT_LEN)
        return m->p_rows[m->p_index[ch]];
    size_t lo = 0, hi = m->p_nastral;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m->p_astral[mid].ch < ch)
            lo = mid + 1;
        else
            hi = mid;
    }
    return m->p_rows[lo < m->p_nastral && m->p_astral[lo].ch == ch ? m->p_astral[lo].row : 0];
}

/* Offer the span w[a..b) with posseg tag `tag` as the longest one. */
static inline void offer_span(const uint32_t *w, Py_ssize_t a, Py_ssize_t b, int tag, Py_ssize_t *best_len,
                              int *best_tag)
{
    Py_ssize_t len = 0;
    for (Py_ssize_t i = a; i < b; i++)
        len += utf8_len(w[i]);
    if (len >= *best_len) {
        *best_len = len;
        *best_tag = tag;
    }
}

/* Tag of an out-of-vocabulary word w[0..n) by jieba's posseg HMM: the tag of
 * the longest span Viterbi cuts it into (last on ties), -1 for "x", -2 on error. */
static int posseg_tag(Model *m, const uint32_t *w, Py_ssize_t n)
{
    const int T = m->p_ntags;
    if (n == 1) {
        PRow r = p_row(m, w[0]);
        int best = -1;
        double best_p = 0.0;
        for (uint32_t i = 0; i < r.len; i++) {
            const PState *s = &m->p_states[r.start + i];
            double p = m->p_start[s->state] + s->em;
            if ((int)s->state / T == PS && p > MIN_FLOAT && (best < 0 || p >= best_p)) {
                best = (int)s->state;
                best_p = p;
            }
        }
        return best < 0 ? -1 : best % T;
    }
    if (RESERVE(m->step, m->step_cap, (size_t)n + 1) < 0 || RESERVE(m->path, m->path_cap, (size_t)n) < 0)
        return -2;
    /* Cand entries of step t are cand[step[t] .. step[t + 1]), ascending by state;
     * only states scoring above MIN_FLOAT are kept, as none below can win. */
    size_t len = 0;
    PRow r = p_row(m, w[0]);
    if (RESERVE(m->cand, m->cand_cap, r.len) < 0)
        return -2;
    m->step[0] = 0;
    for (uint32_t i = 0; i < r.len; i++) {
        const PState *s = &m->p_states[r.start + i];
        double p = m->p_start[s->state] + s->em;
        if (p > MIN_FLOAT)
            m->cand[len++] = (Cand){p, s->state, 0};
    }
    m->step[1] = len;
    if (len == 0)
        return -1;
    for (Py_ssize_t t = 1; t < n; t++) {
        r = p_row(m, w[t]);
        if (RESERVE(m->cand, m->cand_cap, len + r.len) < 0)
            return -2;
        size_t p0 = m->step[t - 1], p1 = m->step[t];
        for (uint32_t i = 0; i < r.len; i++) {
            const PState *s = &m->p_states[r.start + i];
            const double *trans = m->p_trans + (size_t)s->state * (size_t)m->p_nstates;
            double best = MIN_FLOAT;
            uint32_t back = 0;
            for (size_t k = p0; k < p1; k++) {
                double tp = trans[m->cand[k].state];
                if (tp <= MIN_FLOAT)
                    continue;
                double p = m->cand[k].score + tp + s->em;
                if (p > best) {
                    best = p;
                    back = m->cand[k].state;
                }
            }
            if (best > MIN_FLOAT)
                m->cand[len++] = (Cand){best, s->state, back};
        }
        m->step[t + 1] = len;
        if (len == p1)
            return -1;
    }
    /* End on the best E or S state; states ascend, so E states come first. */
    double best = MIN_FLOAT;
    size_t at = len;
    for (size_t k = m->step[n - 1]; k < len; k++) {
        int pos = (int)m->cand[k].state / T;
        if ((pos == PE || pos == PS) && m->cand[k].score > best) {
            best = m->cand[k].score;
            at = k;
        }
    }
    if (at == len)
        return -1;
    uint32_t *path = m->path;
    path[n - 1] = m->cand[at].state;
    for (Py_ssize_t t = n - 1; t > 0; t--) {
        uint32_t back = m->cand[at].back;
        path[t - 1] = back;
        size_t lo = m->step[t - 1], hi = m->step[t];
        while (lo < hi) { /* find `back` among the previous step's states */
            size_t mid = (lo + hi) / 2;
            if (m->cand[mid].state < back)
                lo = mid + 1;
            else
                hi = mid;
        }
        at = lo;
    }
    /* Words run B M.. E or are S; the path ends on E or S, so the spans cover the word. */
    Py_ssize_t best_len = -1, begin = 0;
    int best_tag = -1;
    for (Py_ssize_t t = 0; t < n; t++) {
        int pos = (int)path[t] / T, tag = (int)path[t] % T;
        if (pos == PB)
            begin = t;
        else if (pos == PE || pos == PS)
            offer_span(w, pos == PE ? begin : t, t + 1, tag, &best_len, &best_tag);
    }
    return best_tag;
}

/* Out-of-vocabulary words recur (names, new words) and the posseg Viterbi is
 * the costliest step per word, so its answers for words up to OOV_MAX_LEN
 * characters are kept in a hash table of OOV_SLOTS, emptied when half full. */
#define OOV_LOG2 15
#define OOV_SLOTS (1u << OOV_LOG2)
#define OOV_MAX_LEN 32

/* FNV-1a over code points. */
static uint64_t hash_cps(const uint32_t *w, Py_ssize_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (Py_ssize_t i = 0; i < n; i++)
        h = (h ^ w[i]) * 0x100000001b3ull;
    return h;
}

/* Tag id the posseg HMM gives the word w[0..n) (-1 on error), through the cache. */
static int32_t posseg_tag_cached(Model *m, const uint32_t *w, Py_ssize_t n)
{
    if (n > OOV_MAX_LEN) {
        int t = posseg_tag(m, w, n);
        return t == -2 ? -1 : t < 0 ? m->tag_x : m->p_tag[t];
    }
    if (!m->oov && !(m->oov = PyMem_Calloc(OOV_SLOTS, sizeof *m->oov))) {
        PyErr_NoMemory();
        return -1;
    }
    uint64_t h = hash_cps(w, n);
    size_t i = (size_t)((h * HASH_MUL) >> (64 - OOV_LOG2));
    for (; m->oov[i].len; i = (i + 1) & (OOV_SLOTS - 1)) {
        const OovEntry *o = &m->oov[i];
        if (o->hash == h && o->len == (uint32_t)n && !memcmp(m->oov_pool + o->off, w, (size_t)n * sizeof *w))
            return o->tag;
    }
    int t = posseg_tag(m, w, n);
    if (t == -2 || RESERVE(m->oov_pool, m->oov_pool_cap, m->oov_pool_len + (size_t)n) < 0)
        return -1;
    int32_t tag = t < 0 ? m->tag_x : m->p_tag[t];
    if (m->oov_used >= OOV_SLOTS / 2) {
        memset(m->oov, 0, OOV_SLOTS * sizeof *m->oov);
        m->oov_used = m->oov_pool_len = 0;
        i = (size_t)((h * HASH_MUL) >> (64 - OOV_LOG2));
    }
    memcpy(m->oov_pool + m->oov_pool_len, w, (size_t)n * sizeof *w);
    m->oov[i] = (OovEntry){h, m->oov_pool_len, (uint32_t)n, tag};
    m->oov_pool_len += (size_t)n;
    m->oov_used++;
    return tag;
}

/* Tag id for a word w[0..n) that is not in the dictionary (-1 on error). */
static int32_t guess_tag(Model *m, const uint32_t *w, Py_ssize_t n)
{
    int eng = 0, digits = 0, cjk = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (is_alnum(w[i])) {
            eng++;
            digits += w[i] <= '9';
        } else if (is_cjk_main(w[i]) || is_cjk_ext(w[i])) {
            cjk = 1;
        }
    }
    if (eng)
        return eng == digits ? m->tag_m : m->tag_eng;
    return cjk ? posseg_tag_cached(m, w, n) : m->tag_x;
}

/* ------------------------------------------------------------- segmentation */

/* Emit the token c[a..b) of a run starting at text offset `base`; `e` is its
 * dictionary transition, NULL when it is not a dictionary word. */
static int emit(Model *m, const uint32_t *c, Py_ssize_t base, Py_ssize_t a, Py_ssize_t b, const Edge *e)
{
    int32_t tag = e ? e->tag : guess_tag(m, c + a, b - a);
    if (tag < 0 || RESERVE(m->tok, m->tok_cap, m->tok_len + 1) < 0)
        return -1;
    m->tok[m->tok_len++] = (Tok){(int32_t)(base + a), (int32_t)(base + b), tag, e ? e->word : NO_WORD};
    return 0;
}

static inline int emit_lookup(Model *m, const uint32_t *c, Py_ssize_t base, Py_ssize_t a, Py_ssize_t b)
{
    return emit(m, c, base, a, b, trie_word(&m->trie, c + a, b - a));
}

/* Positions ahead whose first hash probe calc_route prefetches: the walk at a
 * position is a chain of dependent loads, so it starts the next ones early. */
#define PREFETCH_AHEAD 3

/* Best route through c[0..n) into m->route (n + 1 entries). */
static int calc_route(Model *m, const uint32_t *c, Py_ssize_t n)
{
    if (RESERVE(m->route, m->route_cap, (size_t)n + 1) < 0)
        return -1;
    Route *r = m->route;
    const Trie *t = &m->trie;
    const double lt = m->log_total, log1 = 0.0 - lt;
    r[n] = (Route){0.0, (int32_t)n, NULL};
    for (Py_ssize_t idx = n - 1; idx >= 0; idx--) {
        if (idx >= PREFETCH_AHEAD && c[idx - PREFETCH_AHEAD] < ROOT_LEN) {
            uint32_t ahead = t->root[c[idx - PREFETCH_AHEAD]].child;
            if (ahead & HAS_KIDS) {
                size_t home = slot_home(t, slot_key(ahead & ~HAS_KIDS, c[idx - PREFETCH_AHEAD + 1]));
                __builtin_prefetch(&t->fp[home]);
                __builtin_prefetch(&t->slots[home]);
            }
        }
        double best = 0.0;
        Py_ssize_t best_end = -1;
        const Edge *best_word = NULL;
        const Edge *e = trie_step(t, 0, c[idx]);
        for (Py_ssize_t k = idx + 1; e; k++) { /* e: the prefix c[idx..k) */
            if (e->word != NO_WORD) {
                double p = e->lf - lt + r[k].prob;
                if (best_end < 0 || p > best || (p == best && k > best_end)) {
                    best = p;
                    best_end = k;
                    best_word = e;
                }
            }
            if (!(e->child & HAS_KIDS) || k >= n)
                break;
            e = trie_step(t, e->child & ~HAS_KIDS, c[k]);
        }
        if (best_end < 0)
            r[idx] = (Route){log1 + r[idx + 1].prob, (int32_t)idx + 1, NULL};
        else
            r[idx] = (Route){best, (int32_t)best_end, best_word};
    }
    return 0;
}

/* End of the alphanumeric token starting at c[a] (an alphanumeric) within c[..b). */
static Py_ssize_t skip_match_end(const uint32_t *c, Py_ssize_t a, Py_ssize_t b)
{
    Py_ssize_t e = a;
    for (;;) {
        while (e < b && is_alnum(c[e]))
            e++;
        if (e + 1 < b && is_connector(c[e]) && is_alnum(c[e + 1]))
            e++;
        else
            break;
    }
    if (e < b && c[e] == '%')
        e++;
    return e;
}

/* Cut the HMM-han run c[a..b) (b - a >= 2) along its best finalseg state path. */
static int viterbi_cut(Model *m, const uint32_t *c, Py_ssize_t base, Py_ssize_t a, Py_ssize_t b)
{
    Py_ssize_t n = b - a;
    if (RESERVE(m->h_buf, m->h_buf_cap, 5 * (size_t)n) < 0)
        return -1;
    uint8_t *back = m->h_buf, *path = m->h_buf + 4 * n;
    double v[4], nv[4];
    const double *em = m->h_emit[c[a] - HMM_HAN_MIN];
    for (int y = 0; y < 4; y++)
        v[y] = m->h_start[y] + em[y];
    for (Py_ssize_t t = 1; t < n; t++) {
        em = m->h_emit[c[a + t] - HMM_HAN_MIN];
        for (int y = 0; y < 4; y++) {
            int y0 = HMM_PREV[y][0], y1 = HMM_PREV[y][1];
            double p0 = v[y0] + m->h_trans[y0][y] + em[y];
            double p1 = v[y1] + m->h_trans[y1][y] + em[y];
            nv[y] = p0 > p1 ? p0 : p1;
            back[4 * t + y] = (uint8_t)(p0 > p1 ? y0 : y1);
        }
        memcpy(v, nv, sizeof v);
    }
    uint8_t state = v[HE] > v[HS] ? HE : HS;
    path[n - 1] = state;
    for (Py_ssize_t t = n - 1; t > 0; t--) {
        state = back[4 * t + state];
        path[t - 1] = state;
    }
    Py_ssize_t begin = a;
    for (Py_ssize_t t = 0; t < n; t++) {
        Py_ssize_t i = a + t;
        if (path[t] == HB)
            begin = i;
        else if ((path[t] == HE && emit_lookup(m, c, base, begin, i + 1) < 0) ||
                 (path[t] == HS && emit_lookup(m, c, base, i, i + 1) < 0))
            return -1;
    }
    return 0;
}

/* jieba's finalseg cut of c[a..b): Viterbi on HMM-han runs, alphanumeric tokens and gaps elsewhere. */
static int hmm_cut(Model *m, const uint32_t *c, Py_ssize_t base, Py_ssize_t a, Py_ssize_t b)
{
    for (Py_ssize_t i = a; i < b;) {
        int han = is_hmm_han(c[i]);
        Py_ssize_t j = i + 1;
        while (j < b && is_hmm_han(c[j]) == han)
            j++;
        if (han) {
            if ((j - i > 1 ? viterbi_cut(m, c, base, i, j) : emit_lookup(m, c, base, i, j)) < 0)
                return -1;
        } else {
            for (Py_ssize_t p = i; p < j;) {
                Py_ssize_t k = p;
                while (k < j && !is_alnum(c[k]))
                    k++;
                if (k > p && emit_lookup(m, c, base, p, k) < 0)
                    return -1;
                if (k == j)
                    break;
                p = skip_match_end(c, k, j);
                if (emit_lookup(m, c, base, k, p) < 0)
                    return -1;
            }
        }
        i = j;
    }
    return 0;
}

/* Emit the run c[a..b) of one-character route steps. */
static int flush_singles(Model *m, const uint32_t *c, Py_ssize_t base, Py_ssize_t a, Py_ssize_t b)
{
    const Route *r = m->route;
    if (b - a > 1 && trie_get(&m->trie, c + a, b - a) == NO_WORD)
        return hmm_cut(m, c, base, a, b);
    for (Py_ssize_t k = a; k < b; k++)
        if (emit(m, c, base, k, k + 1, r[k].word) < 0)
            return -1;
    return 0;
}

/* Segment and tag the han block c[0..n), which starts at text offset `base`. */
static int cut_han(Model *m, const uint32_t *c, Py_ssize_t n, Py_ssize_t base)
{
    if (calc_route(m, c, n) < 0)
        return -1;
    const Route *r = m->route;
    Py_ssize_t x = 0, left = -1;
    while (x < n) {
        Py_ssize_t y = r[x].end;
        if (y - x == 1) {
            if (left < 0)
                left = x;
        } else {
            if (left >= 0 && flush_singles(m, c, base, left, x) < 0)
                return -1;
            left = -1;
            if (emit(m, c, base, x, y, r[x].word) < 0)
                return -1;
        }
        x = y;
    }
    return left >= 0 ? flush_singles(m, c, base, left, n) : 0;
}

/* Copy the code points of `text` into m->cp; returns the length, -1 on error. */
static Py_ssize_t load_text(Model *m, PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "expected str, got %.200s", Py_TYPE(text)->tp_name);
        return -1;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0)
        return -1;
#endif
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (n >= INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "text too long for int32 offsets");
        return -1;
    }
    if (RESERVE(m->cp, m->cp_cap, (size_t)n + 1) < 0)
        return -1;
    const void *data = PyUnicode_DATA(text);
    switch (PyUnicode_KIND(text)) {
    case PyUnicode_1BYTE_KIND:
        for (Py_ssize_t i = 0; i < n; i++)
            m->cp[i] = ((const Py_UCS1 *)data)[i];
        break;
    case PyUnicode_2BYTE_KIND:
        for (Py_ssize_t i = 0; i < n; i++)
            m->cp[i] = ((const Py_UCS2 *)data)[i];
        break;
    default:
        memcpy(m->cp, data, (size_t)n * sizeof(Py_UCS4));
    }
    return n;
}

static int check_loaded(Model *m)
{
    if (!m->loaded) {
        PyErr_SetString(PyExc_RuntimeError, "segmenter model is not loaded");
        return -1;
    }
    return 0;
}

/* Segment and tag `text` into m->tok; returns the token count, -1 on error. */
static Py_ssize_t segment(Model *m, PyObject *text)
{
    if (check_loaded(m) < 0)
        return -1;
    Py_ssize_t n = load_text(m, text);
    if (n < 0)
        return -1;
    const uint32_t *c = m->cp;
    m->tok_len = 0;
    for (Py_ssize_t i = 0; i < n;) {
        int han = is_han(c[i]);
        Py_ssize_t j = i + 1;
        while (j < n && is_han(c[j]) == han)
            j++;
        if (han) {
            if (cut_han(m, c + i, j - i, i) < 0)
                return -1;
        } else {
            for (Py_ssize_t k = i; k < j;) {
                Py_ssize_t e = (c[k] == '\r' && k + 1 < j && c[k + 1] == '\n') ? k + 2 : k + 1;
                if (emit_lookup(m, c, 0, k, e) < 0)
                    return -1;
                k = e;
            }
        }
        i = j;
    }
    return (Py_ssize_t)m->tok_len;
}

/* ------------------------------------------------------------ dictionary use */

static uint64_t word_freq(const Model *m, const uint32_t *w, Py_ssize_t n)
{
    int32_t id = trie_get(&m->trie, w, n);
    return id == NO_WORD ? 1 : m->rec[id].freq;
}

/* jieba-rs's `suggest_freq`: the frequency that makes c[0..n) beat its split
 * without the HMM (or its own frequency, if larger). */
static int suggest_freq(Model *m, const uint32_t *c, Py_ssize_t n, uint64_t *out)
{
    const double lt = m->log_total;
    double acc = 0.0;
#define ADD_TOKEN(a, b) (acc = acc + log((double)word_freq(m, c + (a), (b) - (a))) - lt)
    for (Py_ssize_t i = 0; i < n;) {
        int han = is_han(c[i]);
        Py_ssize_t j = i + 1;
        while (j < n && is_han(c[j]) == han)
            j++;
        if (!han) {
            for (Py_ssize_t k = i; k < j;) {
                Py_ssize_t e = (c[k] == '\r' && k + 1 < j && c[k + 1] == '\n') ? k + 2 : k + 1;
                ADD_TOKEN(k, e);
                k = e;
            }
        } else {
            /* without the HMM only runs of single ASCII alphanumerics are joined */
            if (calc_route(m, c + i, j - i) < 0)
                return -1;
            const Route *r = m->route;
            Py_ssize_t x = 0, left = -1;
            while (x < j - i) {
                Py_ssize_t y = r[x].end;
                if (y - x == 1 && is_alnum(c[i + x])) {
                    if (left < 0)
                        left = x;
                } else {
                    if (left >= 0)
                        ADD_TOKEN(i + left, i + x);
                    left = -1;
                    ADD_TOKEN(i + x, i + y);
                }
                x = y;
            }
            if (left >= 0)
                ADD_TOKEN(i + left, j);
        }
        i = j;
    }
#undef ADD_TOKEN
    double e = exp(acc + lt);
    /* Rust's saturating float-to-usize cast, then a wrapping + 1 */
    uint64_t f = e >= 18446744073709551616.0 ? UINT64_MAX : e > 0.0 ? (uint64_t)e : 0;
    f += 1;
    uint64_t own = word_freq(m, c, n);
    *out = f > own ? f : own;
    return 0;
}

/* Strictly decode the UTF-8 bytes s[0..n) into out (room for n code points). */
static int decode_utf8(const unsigned char *s, Py_ssize_t n, uint32_t *out, Py_ssize_t *out_len)
{
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < n;) {
        uint32_t c = s[i], need, min;
        if (c < 0x80) {
            out[k++] = c;
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            c &= 0x1F, need = 1, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            c &= 0x0F, need = 2, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            c &= 0x07, need = 3, min = 0x10000;
        } else {
            return -1;
        }
        if (i + (Py_ssize_t)need >= n)
            return -1;
        for (uint32_t j = 1; j <= need; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return -1;
            c = (c << 6) | (s[i + j] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return -1;
        out[k++] = c;
        i += (Py_ssize_t)need + 1;
    }
    *out_len = k;
    return 0;
}

static inline int is_ascii_space(unsigned char b)
{
    return b == ' ' || b == '\t' || b == '\n' || b == '\f' || b == '\r';
}

/* Rust's `usize::from_str` on d[0..n): an optional '+', then decimal digits, no overflow. */
static int parse_freq(const unsigned char *d, Py_ssize_t n, uint64_t *out)
{
    const unsigned char *end = d + n;
    if (d < end && *d == '+')
        d++;
    if (d == end)
        return -1;
    uint64_t f = 0;
    for (; d < end; d++) {
        if (*d < '0' || *d > '9' || f > (UINT64_MAX - (uint64_t)(*d - '0')) / 10)
            return -1;
        f = f * 10 + (uint64_t)(*d - '0');
    }
    *out = f;
    return 0;
}

/* Load jieba's dict.txt: lines of `word [freq [tag]]`, split on ASCII whitespace;
 * line i becomes record i. */
static int load_dict(Model *m, const char *buf, Py_ssize_t size)
{
    const unsigned char *s = (const unsigned char *)buf, *end = s + size;
    size_t line_no = 0;
    while (s < end) {
        const unsigned char *eol = memchr(s, '\n', (size_t)(end - s));
        if (!eol)
            eol = end;
        line_no++;
        const unsigned char *field[3];
        Py_ssize_t flen[3];
        int nf = 0;
        for (const unsigned char *p = s; p < eol && nf < 3;) {
            while (p < eol && is_ascii_space(*p))
                p++;
            if (p == eol)
                break;
            field[nf] = p;
            while (p < eol && !is_ascii_space(*p))
                p++;
            flen[nf] = p - field[nf];
            nf++;
        }
        s = eol + 1;
        if (nf == 0)
            continue;
        uint64_t freq = 0;
        if (nf > 1 && parse_freq(field[1], flen[1], &freq) < 0) {
            PyErr_Format(PyExc_ValueError, "dictionary line %zu: invalid frequency", line_no);
            return -1;
        }
        int32_t tag = nf > 2 ? intern_tag_utf8(m, (const char *)field[2], flen[2]) : intern_tag_utf8(m, "", 0);
        if (tag < 0)
            return -1;
        if (RESERVE(m->pool, m->pool_cap, m->pool_len + (size_t)flen[0]) < 0)
            return -1;
        Py_ssize_t wlen;
        if (decode_utf8(field[0], flen[0], m->pool + m->pool_len, &wlen) < 0) {
            PyErr_Format(PyExc_ValueError, "dictionary line %zu: invalid UTF-8", line_no);
            return -1;
        }
        if (wlen == 0 || push_record(m, wlen, freq, tag) < 0) {
            if (wlen == 0)
                PyErr_Format(PyExc_ValueError, "dictionary line %zu: empty word", line_no);
            return -1;
        }
    }
    m->log_total = log((double)m->total);
    return 0;
}

/* ------------------------------------------------------------ model loading */

static int get_double(PyObject *o, double *out)
{
    *out = PyFloat_AsDouble(o);
    return *out == -1.0 && PyErr_Occurred() ? -1 : 0;
}

/* The code point of a one-character str key. */
static int get_char(PyObject *o, uint32_t *out)
{
    if (!PyUnicode_Check(o) || PyUnicode_GET_LENGTH(o) != 1) {
        PyErr_SetString(PyExc_ValueError, "HMM tables must be keyed by single characters");
        return -1;
    }
    *out = PyUnicode_READ_CHAR(o, 0);
    return 0;
}

/* A sequence of exactly `n` items as a new fast sequence. */
static PyObject *fast_seq(PyObject *o, Py_ssize_t n, const char *what)
{
    PyObject *seq = PySequence_Fast(o, what);
    if (seq && PySequence_Fast_GET_SIZE(seq) != n) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd items", what, n);
        Py_CLEAR(seq);
    }
    return seq;
}

static int load_finalseg(Model *m, PyObject *start, PyObject *trans, PyObject *emit_p)
{
    int err = -1;
    PyObject *st = fast_seq(start, 4, "HMM start"), *tr = fast_seq(trans, 4, "HMM trans"),
             *em = fast_seq(emit_p, 4, "HMM emit");
    if (!st || !tr || !em)
        goto done;
    m->h_emit = PyMem_Malloc(HMM_SPAN * sizeof *m->h_emit);
    if (!m->h_emit) {
        PyErr_NoMemory();
        goto done;
    }
    for (size_t i = 0; i < HMM_SPAN; i++)
        for (int y = 0; y < 4; y++)
            m->h_emit[i][y] = MIN_FLOAT;
    for (int y = 0; y < 4; y++) {
        if (get_double(PySequence_Fast_GET_ITEM(st, y), &m->h_start[y]) < 0)
            goto done;
        PyObject *row = fast_seq(PySequence_Fast_GET_ITEM(tr, y), 4, "HMM trans row");
        if (!row)
            goto done;
        for (int z = 0; z < 4; z++)
            if (get_double(PySequence_Fast_GET_ITEM(row, z), &m->h_trans[y][z]) < 0) {
                Py_DECREF(row);
                goto done;
            }
        Py_DECREF(row);
        PyObject *d = PySequence_Fast_GET_ITEM(em, y), *key, *value;
        Py_ssize_t pos = 0;
        if (!PyDict_Check(d)) {
            PyErr_SetString(PyExc_TypeError, "HMM emit: expected dicts");
            goto done;
        }
        while (PyDict_Next(d, &pos, &key, &value)) {
            uint32_t ch;
            double p;
            if (get_char(key, &ch) < 0 || get_double(value, &p) < 0)
                goto done;
            if (is_hmm_han(ch)) /* Viterbi never sees other characters */
                m->h_emit[ch - HMM_HAN_MIN][y] = p;
        }
    }
    err = 0;
done:
    Py_XDECREF(st);
    Py_XDECREF(tr);
    Py_XDECREF(em);
    return err;
}

typedef struct {
    uint32_t ch, state;
    double em;
} Emission;

static int cmp_emission(const void *a, const void *b)
{
    const Emission *x = a, *y = b;
    if (x->ch != y->ch)
        return x->ch < y->ch ? -1 : 1;
    return x->state < y->state ? -1 : x->state > y->state;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_astral(const void *a, const void *b)
{
    return cmp_u32(&((const AstralRow *)a)->ch, &((const AstralRow *)b)->ch);
}

typedef struct {
    size_t n_states, cap_states, n_rows, cap_rows, cap_astral;
} RowBuild;

/* Start a new posseg row for `ch`; its states are appended to m->p_states next. */
static int open_row(Model *m, RowBuild *rb, uint32_t ch)
{
    if (rb->n_rows >= ROOT_LEN - 1) { /* row ids are 16-bit in p_index */
        PyErr_SetString(PyExc_ValueError, "posseg model: too many characters");
        return -1;
    }
    if (RESERVE(m->p_rows, rb->cap_rows, rb->n_rows + 1) < 0)
        return -1;
    m->p_rows[rb->n_rows] = (PRow){(uint32_t)rb->n_states, 0};
    if (ch < ROOT_LEN) {
        m->p_index[ch] = (uint16_t)rb->n_rows;
    } else {
        if (RESERVE(m->p_astral, rb->cap_astral, m->p_nastral + 1) < 0)
            return -1;
        m->p_astral[m->p_nastral++] = (AstralRow){ch, (uint32_t)rb->n_rows};
    }
    rb->n_rows++;
    return 0;
}

static int add_row_state(Model *m, RowBuild *rb, uint32_t state, double em)
{
    if (RESERVE(m->p_states, rb->cap_states, rb->n_states + 1) < 0)
        return -1;
    m->p_states[rb->n_states++] = (PState){em, state};
    m->p_rows[rb->n_rows - 1].len++;
    return 0;
}

static int load_posseg(Model *m, PyObject *tags, PyObject *start, PyObject *trans, PyObject *emit_p,
                       PyObject *char_state)
{
    int err = -1;
    Emission *ems = NULL;
    size_t n_ems = 0, cap_ems = 0;
    uint32_t *states = NULL;
    size_t cap_states = 0;
    RowBuild rb = {0, 0, 0, 0, 0};
    PyObject *tg = PySequence_Fast(tags, "posseg tags"), *st = NULL, *tr = NULL, *em = NULL;
    if (!tg)
        goto done;
    Py_ssize_t T = PySequence_Fast_GET_SIZE(tg), S = 4 * T;
    if (T < 1 || S > 0xFFFF) {
        PyErr_SetString(PyExc_ValueError, "posseg tags: bad count");
        goto done;
    }
    m->p_ntags = (int)T;
    m->p_nstates = (int)S;
    st = fast_seq(start, S, "posseg start");
    tr = fast_seq(trans, S, "posseg trans");
    em = fast_seq(emit_p, S, "posseg emit");
    m->p_tag = PyMem_Malloc((size_t)T * sizeof *m->p_tag);
    m->p_start = PyMem_Malloc((size_t)S * sizeof *m->p_start);
    m->p_trans = PyMem_Malloc((size_t)S * (size_t)S * sizeof *m->p_trans);
    m->p_index = PyMem_Calloc(ROOT_LEN, sizeof *m->p_index);
    if (!st || !tr || !em)
        goto done;
    if (!m->p_tag || !m->p_start || !m->p_trans || !m->p_index) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < T; i++)
        if ((m->p_tag[i] = intern_tag(m, PySequence_Fast_GET_ITEM(tg, i))) < 0)
            goto done;
    for (Py_ssize_t i = 0; i < S * S; i++)
        m->p_trans[i] = MIN_FLOAT;
    for (Py_ssize_t s = 0; s < S; s++) {
        if (get_double(PySequence_Fast_GET_ITEM(st, s), &m->p_start[s]) < 0)
            goto done;
        PyObject *d = PySequence_Fast_GET_ITEM(tr, s), *key, *value;
        Py_ssize_t pos = 0;
        if (!PyDict_Check(d) || !PyDict_Check(PySequence_Fast_GET_ITEM(em, s))) {
            PyErr_SetString(PyExc_TypeError, "posseg trans/emit: expected dicts");
            goto done;
        }
        while (PyDict_Next(d, &pos, &key, &value)) {
            Py_ssize_t to = PyLong_AsSsize_t(key);
            if (to == -1 && PyErr_Occurred())
                goto done;
            if (to < 0 || to >= S) {
                PyErr_SetString(PyExc_ValueError, "posseg trans: state out of range");
                goto done;
            }
            if (get_double(value, &m->p_trans[to * S + s]) < 0)
                goto done;
        }
        d = PySequence_Fast_GET_ITEM(em, s);
        pos = 0;
        while (PyDict_Next(d, &pos, &key, &value)) {
            if (RESERVE(ems, cap_ems, n_ems + 1) < 0)
                goto done;
            Emission *e = &ems[n_ems++];
            e->state = (uint32_t)s;
            if (get_char(key, &e->ch) < 0 || get_double(value, &e->em) < 0)
                goto done;
        }
    }
    qsort(ems, n_ems, sizeof *ems, cmp_emission);
    if (RESERVE(m->p_rows, rb.cap_rows, 1) < 0) /* row 0: the empty row, for unknown characters */
        goto done;
    m->p_rows[0] = (PRow){0, 0};
    rb.n_rows = 1;
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    if (!PyDict_Check(char_state)) {
        PyErr_SetString(PyExc_TypeError, "posseg char_state: expected a dict");
        goto done;
    }
    /* Characters with a state list take exactly those states. */
    while (PyDict_Next(char_state, &pos, &key, &value)) {
        uint32_t ch;
        if (get_char(key, &ch) < 0)
            goto done;
        PyObject *seq = PySequence_Fast(value, "posseg char_state row");
        if (!seq)
            goto done;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        if (RESERVE(states, cap_states, (size_t)n + 1) < 0) {
            Py_DECREF(seq);
            goto done;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_ssize_t s = PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(seq, i));
            if ((s == -1 && PyErr_Occurred()) || s < 0 || s >= S) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_ValueError, "posseg char_state: state out of range");
                Py_DECREF(seq);
                goto done;
            }
            states[i] = (uint32_t)s;
        }
        Py_DECREF(seq);
        if (n == 0) /* an empty list restricts nothing */
            continue;
        qsort(states, (size_t)n, sizeof *states, cmp_u32);
        if (open_row(m, &rb, ch) < 0)
            goto done;
        for (Py_ssize_t i = 0; i < n; i++) {
            Emission probe = {ch, states[i], 0.0};
            const Emission *e = bsearch(&probe, ems, n_ems, sizeof *ems, cmp_emission);
            if (add_row_state(m, &rb, states[i], e ? e->em : MIN_FLOAT) < 0)
                goto done;
        }
    }
    qsort(m->p_astral, m->p_nastral, sizeof *m->p_astral, cmp_astral);
    /* Any other character may take any state; those without an emission can
     * never be chosen, so its row lists the states it has an emission for. */
    size_t n_listed_astral = m->p_nastral;
    for (size_t i = 0; i < n_ems;) {
        size_t j = i;
        while (j < n_ems && ems[j].ch == ems[i].ch)
            j++;
        AstralRow probe = {ems[i].ch, 0};
        int listed = probe.ch < ROOT_LEN
                         ? m->p_index[probe.ch] != 0
                         : bsearch(&probe, m->p_astral, n_listed_astral, sizeof probe, cmp_astral) != NULL;
        if (!listed) {
            if (open_row(m, &rb, ems[i].ch) < 0)
                goto done;
            for (size_t k = i; k < j; k++)
                if (add_row_state(m, &rb, ems[k].state, ems[k].em) < 0)
                    goto done;
        }
        i = j;
    }
    qsort(m->p_astral, m->p_nastral, sizeof *m->p_astral, cmp_astral);
    err = 0;
done:
    PyMem_Free(ems);
    PyMem_Free(states);
    Py_XDECREF(tg);
    Py_XDECREF(st);
    Py_XDECREF(tr);
    Py_XDECREF(em);
    return err;
}

/* ---------------------------------------------------------------- the type */

static void Model_free_data(Model *m)
{
    trie_free(&m->trie);
    void *bufs[] = {m->rec, m->oov, m->oov_pool, m->pool, m->h_emit, m->p_tag, m->p_start, m->p_trans, m->p_states,
                    m->p_rows, m->p_index, m->p_astral, m->cp, m->route, m->tok, m->h_buf, m->cand,
                    m->step, m->path};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        PyMem_Free(bufs[i]);
    Py_CLEAR(m->tag_list);
    Py_CLEAR(m->tag_ids);
}

static void Model_dealloc(Model *m)
{
    Model_free_data(m);
    Py_TYPE(m)->tp_free((PyObject *)m);
}

static int Model_init(Model *m, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"dictionary", "hmm_start", "hmm_trans", "hmm_emit", "pos_tags",
                             "pos_start", "pos_trans", "pos_emit", "pos_char_state", NULL};
    Py_buffer dict;
    PyObject *hs, *ht, *he, *pt, *ps, *ptr, *pe, *pcs;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*OOOOOOOO:Model", kwlist, &dict, &hs, &ht, &he, &pt, &ps,
                                     &ptr, &pe, &pcs))
        return -1;
    int err = -1;
    if (m->loaded || m->tag_list) {
        PyErr_SetString(PyExc_RuntimeError, "segmenter model is already loaded");
        goto done;
    }
    m->tag_list = PyList_New(0);
    m->tag_ids = PyDict_New();
    if (!m->tag_list || !m->tag_ids || trie_init(&m->trie, 20) < 0) /* jieba's dict fills ~45% of 2^20 */
        goto done;
    if (load_dict(m, dict.buf, dict.len) < 0 || load_finalseg(m, hs, ht, he) < 0 ||
        load_posseg(m, pt, ps, ptr, pe, pcs) < 0)
        goto done;
    if ((m->tag_eng = intern_tag_utf8(m, "eng", 3)) < 0 || (m->tag_m = intern_tag_utf8(m, "m", 1)) < 0 ||
        (m->tag_x = intern_tag_utf8(m, "x", 1)) < 0)
        goto done;
    m->loaded = 1;
    err = 0;
done:
    PyBuffer_Release(&dict);
    return err;
}

PyDoc_STRVAR(tag_offsets_doc,
             "tag_offsets(text) -> bytes\n\n"
             "Words of `text` as packed native int32 quadruples: char_start, char_end, tag_id, record_id\n"
             "(-1 for a word not in the dictionary). Same words and tags as rjieba.tag(text).");

static PyObject *Model_tag_offsets(Model *m, PyObject *text)
{
    Py_ssize_t n = segment(m, text);
    if (n < 0)
        return NULL;
    return PyBytes_FromStringAndSize((const char *)m->tok, n * (Py_ssize_t)sizeof(Tok));
}

PyDoc_STRVAR(tag_doc,
             "tag(text) -> list[tuple[str, str]]\n\nWords of `text` with their POS tags, as rjieba.tag(text).");

static PyObject *Model_tag(Model *m, PyObject *text)
{
    Py_ssize_t n = segment(m, text);
    if (n < 0)
        return NULL;
    PyObject *out = PyList_New(n);
    if (!out)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        const Tok *t = &m->tok[i];
        PyObject *word = PyUnicode_Substring(text, t->start, t->end);
        if (!word) {
            Py_DECREF(out);
            return NULL;
        }
        PyObject *tag = PyList_GET_ITEM(m->tag_list, t->tag);
        Py_INCREF(tag);
        PyObject *pair = PyTuple_New(2);
        if (!pair) {
            Py_DECREF(word);
            Py_DECREF(tag);
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(pair, 0, word);
        PyTuple_SET_ITEM(pair, 1, tag);
        PyList_SET_ITEM(out, i, pair);
    }
    return out;
}

PyDoc_STRVAR(suggest_freq_doc,
             "suggest_freq(segment) -> int\n\n"
             "Frequency that keeps `segment` whole (jieba-rs's suggest_freq).");

static PyObject *Model_suggest_freq(Model *m, PyObject *segment)
{
    if (check_loaded(m) < 0)
        return NULL;
    Py_ssize_t n = load_text(m, segment);
    uint64_t f;
    if (n < 0 || suggest_freq(m, m->cp, n, &f) < 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(f);
}

PyDoc_STRVAR(add_word_doc,
             "add_word(word, freq=None, tag=None) -> int\n\n"
             "Add `word` (or set its frequency) as jieba-rs's add_word does; freq None means\n"
             "suggest_freq(word), tag None means \"\" and an existing word keeps its tag.\n"
             "Returns the frequency used.");

static PyObject *Model_add_word(Model *m, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"word", "freq", "tag", NULL};
    PyObject *word, *freq_o = Py_None, *tag_o = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "U|OO:add_word", kwlist, &word, &freq_o, &tag_o))
        return NULL;
    if (check_loaded(m) < 0)
        return NULL;
    if (tag_o != Py_None && !PyUnicode_Check(tag_o)) {
        PyErr_SetString(PyExc_TypeError, "tag must be a str or None");
        return NULL;
    }
    Py_ssize_t n = load_text(m, word);
    if (n < 0)
        return NULL;
    if (n == 0)
        return PyLong_FromLong(0);
    uint64_t freq;
    if (freq_o == Py_None) {
        if (suggest_freq(m, m->cp, n, &freq) < 0)
            return NULL;
    } else {
        freq = PyLong_AsUnsignedLongLong(freq_o);
        if (freq == (uint64_t)-1 && PyErr_Occurred())
            return NULL;
    }
    Edge *e = trie_word(&m->trie, m->cp, n);
    if (e) {
        uint64_t old = m->rec[e->word].freq;
        m->rec[e->word].freq = freq;
        e->lf = log((double)freq);
        m->total += freq;
        m->total -= old;
    } else {
        int32_t tag = tag_o == Py_None ? intern_tag_utf8(m, "", 0) : intern_tag(m, tag_o);
        if (tag < 0 || RESERVE(m->pool, m->pool_cap, m->pool_len + (size_t)n) < 0)
            return NULL;
        memcpy(m->pool + m->pool_len, m->cp, (size_t)n * sizeof *m->cp);
        if (push_record(m, n, freq, tag) < 0)
            return NULL;
    }
    m->log_total = log((double)m->total);
    return PyLong_FromUnsignedLongLong(freq);
}

PyDoc_STRVAR(record_word_doc, "record_word(record_id) -> str\n\nThe dictionary word of a record id.");

static PyObject *Model_record_word(Model *m, PyObject *arg)
{
    Py_ssize_t i = PyLong_AsSsize_t(arg);
    if (i == -1 && PyErr_Occurred())
        return NULL;
    if (i < 0 || (size_t)i >= m->n_rec) {
        PyErr_SetString(PyExc_IndexError, "record id out of range");
        return NULL;
    }
    return PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, m->pool + m->rec[i].off, m->rec[i].len);
}

static PyObject *Model_get_n_records(Model *m, void *closure)
{
    return PyLong_FromSize_t(m->n_rec);
}

static PyObject *Model_get_tag_names(Model *m, void *closure)
{
    return m->tag_list ? PyList_GetSlice(m->tag_list, 0, PyList_GET_SIZE(m->tag_list)) : PyList_New(0);
}

static PyObject *Model_get_n_tags(Model *m, void *closure)
{
    return PyLong_FromSsize_t(m->tag_list ? PyList_GET_SIZE(m->tag_list) : 0);
}

static PyMethodDef Model_methods[] = {
    {"tag_offsets", (PyCFunction)Model_tag_offsets, METH_O, tag_offsets_doc},
    {"tag", (PyCFunction)Model_tag, METH_O, tag_doc},
    {"add_word", (PyCFunction)(void (*)(void))Model_add_word, METH_VARARGS | METH_KEYWORDS, add_word_doc},
    {"suggest_freq", (PyCFunction)Model_suggest_freq, METH_O, suggest_freq_doc},
    {"record_word", (PyCFunction)Model_record_word, METH_O, record_word_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Model_getset[] = {
    {"n_records", (getter)Model_get_n_records, NULL, "Number of dictionary records (lines plus added words).", NULL},
    {"tag_names", (getter)Model_get_tag_names, NULL, "Tag id -> POS string.", NULL},
    {"n_tags", (getter)Model_get_n_tags, NULL, "len(tag_names), without copying them.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "obert_lib.corpus._segmenter.Model",
    .tp_basicsize = sizeof(Model),
    .tp_dealloc = (destructor)Model_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Model(dictionary, hmm_start, hmm_trans, hmm_emit, pos_tags, pos_start, pos_trans, pos_emit,\n"
              "      pos_char_state)\n\n"
              "jieba dictionary + finalseg and posseg HMMs; segments and tags like jieba-rs's Jieba::tag.",
    .tp_methods = Model_methods,
    .tp_getset = Model_getset,
    .tp_init = (initproc)Model_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef segmenter_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "obert_lib.corpus._segmenter",
    .m_doc = "jieba-rs word segmentation and POS tagging in C (see obert_lib.corpus.segmenter).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__segmenter(void)
{
    if (PyType_Ready(&ModelType) < 0)
        return NULL;
    PyObject *mod = PyModule_Create(&segmenter_module);
    if (!mod)
        return NULL;
    Py_INCREF(&ModelType);
    if (PyModule_AddObject(mod, "Model", (PyObject *)&ModelType) < 0) {
        Py_DECREF(&ModelType);
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
