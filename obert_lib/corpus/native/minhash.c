/*
 * obert_lib.corpus._minhash: MinHash signatures of character shingles, folded into LSH band keys.
 *
 * For each text: drop every character that is not a word character (re's [\W_]+, i.e. keep
 * str.isalnum() characters; '_' goes too), take its character n-grams (the whole rest when shorter
 * than n, nothing when empty), hash each n-gram's UTF-8 bytes with CRC-32 (zlib's polynomial), and
 * permute each hash x with h_j(x) = (a_j * x + b_j mod 2^64) mod (2^61 - 1), datatrove's universal
 * hashing (datatrove.pipeline.dedup.minhash.MinhashDedupSignature.get_signature, Broder 1997). The
 * signature is min over the n-grams of each h_j. Band k (hashes k*r .. k*r + r - 1) is then folded
 * into one 64-bit key (splitmix64's finaliser over the r values), so that two documents share band
 * k's key exactly when their r hashes agree, up to a 2^-64 chance of a collision per pair.
 *
 * dedup.shingles and dedup.minhash_reference are the Python references (tests/corpus/test_minhash.py).
 * Characters are read through the PEP 393 kind/data of the str; a lone surrogate is encoded as its
 * 3-byte form (Python's "surrogatepass"), where str.encode("utf-8") would raise.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MERSENNE_61 ((uint64_t)0x1FFFFFFFFFFFFFFFULL)
#define MAX_PERM 1024
#define MAX_N 64

static uint32_t crc_table[256];

static void build_crc_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

/* UTF-8 bytes of code point c into out; returns their count. */
static int utf8_of(Py_UCS4 c, unsigned char *out) {
    if (c < 0x80) { out[0] = (unsigned char)c; return 1; }
    if (c < 0x800) { out[0] = 0xC0 | (c >> 6); out[1] = 0x80 | (c & 0x3F); return 2; }
    if (c < 0x10000) {
        out[0] = 0xE0 | (c >> 12); out[1] = 0x80 | ((c >> 6) & 0x3F); out[2] = 0x80 | (c & 0x3F);
        return 3;
    }
    out[0] = 0xF0 | (c >> 18); out[1] = 0x80 | ((c >> 12) & 0x3F);
    out[2] = 0x80 | ((c >> 6) & 0x3F); out[3] = 0x80 | (c & 0x3F);
    return 4;
}

static inline uint64_t mix64(uint64_t z) { /* splitmix64's finaliser */
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* sig[j] = min over the xs of (a[j] * x + b[j] mod 2^64) mod (2^61 - 1). Compiled for AVX-512 (whose 64-bit
 * multiply vectorises this loop: 2.7 times faster on FewCLUE), AVX2 and plain x86-64, chosen at load time
 * (GCC's target_clones), so one build runs on any x86-64 machine. */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
__attribute__((target_clones("arch=skylake-avx512", "avx2", "default")))
#endif
static void permuted_min(const uint64_t *xs, Py_ssize_t n_x, const uint64_t *a, const uint64_t *b, Py_ssize_t num_perm,
                         uint64_t *sig) {
    for (Py_ssize_t j = 0; j < num_perm; j++) sig[j] = UINT64_MAX;
    for (Py_ssize_t g = 0; g < n_x; g++) {
        uint64_t x = xs[g];
        for (Py_ssize_t j = 0; j < num_perm; j++) {
            uint64_t v = a[j] * x + b[j];            /* wraps modulo 2^64, as numpy's uint64 does */
            v = (v & MERSENNE_61) + (v >> 61);       /* v mod 2^61 - 1: 2^61 is 1 modulo it */
            v = v >= MERSENNE_61 ? v - MERSENNE_61 : v;
            sig[j] = v < sig[j] ? v : sig[j];
        }
    }
}

/* The signature of one text into sig[num_perm]; returns 0 when the text has no word character. */
static int signature(PyObject *text, Py_ssize_t n, const uint64_t *a, const uint64_t *b, Py_ssize_t num_perm,
                     uint64_t *sig, unsigned char *bytes, uint32_t *lens, uint64_t *xs, Py_ssize_t cap) {
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text), m = 0, nbytes = 0;
    /* bytes: the UTF-8 of the kept characters one after another; lens[i]: the bytes of kept character i */
    for (Py_ssize_t i = 0; i < len; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (!Py_UNICODE_ISALNUM(c)) continue;
        if (m >= cap) return -1;
        lens[m++] = (uint32_t)utf8_of(c, bytes + nbytes);
        nbytes += lens[m - 1];
    }
    if (m == 0) return 0;
    Py_ssize_t grams = m < n ? 1 : m - n + 1, width = m < n ? m : n, start = 0;
    for (Py_ssize_t g = 0; g < grams; g++) {
        Py_ssize_t size = 0;
        for (Py_ssize_t k = 0; k < width; k++) size += lens[g + k];
        uint32_t crc = 0xFFFFFFFFu;
        for (Py_ssize_t k = 0; k < size; k++) crc = crc_table[(crc ^ bytes[start + k]) & 0xFF] ^ (crc >> 8);
        xs[g] = (uint64_t)(crc ^ 0xFFFFFFFFu);
        start += lens[g];
    }
    permuted_min(xs, grams, a, b, num_perm, sig);
    return 1;
}

static int uint64_buffer(PyObject *obj, Py_buffer *view, const char *name) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (view->len % 8) {
        PyErr_Format(PyExc_ValueError, "%s: a buffer of uint64 values expected", name);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* bands(texts, n, a, b, bands, signatures=False) -> (keys, has_signature): see the top of the file. */
static PyObject *bands(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5 && nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "bands(texts, n, a, b, bands, signatures=False)");
        return NULL;
    }
    PyObject *texts = args[0];
    Py_ssize_t n = PyLong_AsSsize_t(args[1]), n_bands = PyLong_AsSsize_t(args[4]);
    int raw = nargs == 6 ? PyObject_IsTrue(args[5]) : 0;
    if (PyErr_Occurred() || raw < 0) return NULL;
    if (!PyList_Check(texts)) {
        PyErr_SetString(PyExc_TypeError, "texts: a list of str expected");
        return NULL;
    }
    if (n < 1 || n > MAX_N) {
        PyErr_Format(PyExc_ValueError, "n: %zd is not within 1..%d", n, MAX_N);
        return NULL;
    }
    Py_buffer av, bv;
    if (uint64_buffer(args[2], &av, "a") < 0) return NULL;
    if (uint64_buffer(args[3], &bv, "b") < 0) { PyBuffer_Release(&av); return NULL; }
    Py_ssize_t num_perm = av.len / 8, docs = PyList_GET_SIZE(texts);
    PyObject *keys = NULL, *has = NULL, *result = NULL;
    uint64_t *sig = NULL;
    unsigned char *bytes = NULL;
    uint32_t *lens = NULL;
    uint64_t *xs = NULL;
    if (bv.len != av.len || num_perm < 1 || num_perm > MAX_PERM || n_bands < 1 || num_perm % n_bands) {
        PyErr_Format(PyExc_ValueError, "a and b: %zd and %zd hashes; need equal counts within 1..%d, a multiple of bands (%zd)",
                     num_perm, (Py_ssize_t)(bv.len / 8), MAX_PERM, n_bands);
        goto done;
    }
    Py_ssize_t per = num_perm / n_bands, width = raw ? num_perm : n_bands, cap = 0;
    for (Py_ssize_t i = 0; i < docs; i++) {
        PyObject *t = PyList_GET_ITEM(texts, i);
        if (!PyUnicode_Check(t)) {
            PyErr_Format(PyExc_TypeError, "texts[%zd]: str expected, got %s", i, Py_TYPE(t)->tp_name);
            goto done;
        }
        if (PyUnicode_GET_LENGTH(t) > cap) cap = PyUnicode_GET_LENGTH(t);
    }
    keys = PyBytes_FromStringAndSize(NULL, docs * width * 8);
    has = PyBytes_FromStringAndSize(NULL, docs);
    sig = malloc(sizeof(uint64_t) * num_perm);
    bytes = malloc(4 * (size_t)cap + 1);
    lens = malloc(sizeof(uint32_t) * ((size_t)cap + 1));
    xs = malloc(sizeof(uint64_t) * ((size_t)cap + 1));
    if (!keys || !has || !sig || !bytes || !lens || !xs) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto done;
    }
    uint64_t *out = (uint64_t *)PyBytes_AS_STRING(keys);
    unsigned char *flags = (unsigned char *)PyBytes_AS_STRING(has);
    const uint64_t *a = av.buf, *b = bv.buf;
    for (Py_ssize_t i = 0; i < docs; i++) {
        int got = signature(PyList_GET_ITEM(texts, i), n, a, b, num_perm, sig, bytes, lens, xs, cap + 1);
        flags[i] = (unsigned char)got;
        uint64_t *row = out + i * width;
        if (!got) { memset(row, 0, 8 * width); continue; }
        if (raw) { memcpy(row, sig, 8 * num_perm); continue; }
        for (Py_ssize_t k = 0; k < n_bands; k++) {
            uint64_t h = 0x9E3779B97F4A7C15ULL * (uint64_t)(k + 1);
            for (Py_ssize_t j = 0; j < per; j++) h = mix64(h ^ sig[k * per + j]);
            row[k] = h;
        }
    }
    result = PyTuple_Pack(2, keys, has);
done:
    Py_XDECREF(keys);
    Py_XDECREF(has);
    free(sig);
    free(bytes);
    free(lens);
    free(xs);
    PyBuffer_Release(&av);
    PyBuffer_Release(&bv);
    return result;
}

static PyObject *crc32_of(PyObject *self, PyObject *arg) { /* crc32(bytes) -> int, for the tests */
    Py_buffer v;
    if (PyObject_GetBuffer(arg, &v, PyBUF_SIMPLE) < 0) return NULL;
    uint32_t crc = 0xFFFFFFFFu;
    const unsigned char *p = v.buf;
    for (Py_ssize_t k = 0; k < v.len; k++) crc = crc_table[(crc ^ p[k]) & 0xFF] ^ (crc >> 8);
    PyBuffer_Release(&v);
    return PyLong_FromUnsignedLong(crc ^ 0xFFFFFFFFu);
}

static PyMethodDef methods[] = {
    {"bands", (PyCFunction)(void (*)(void))bands, METH_FASTCALL,
     "bands(texts, n, a, b, bands, signatures=False) -> (keys: bytes of uint64 [docs, bands] (or [docs, "
     "num_perm] signatures), has_signature: bytes [docs] of 0/1)."},
    {"crc32", crc32_of, METH_O, "crc32(bytes) -> zlib's CRC-32 of the bytes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_minhash", "MinHash band keys of character shingles.",
                                    -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__minhash(void) {
    build_crc_table();
    return PyModule_Create(&module);
}
