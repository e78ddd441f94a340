/*
 * test_sched.c - tests of the pure-C scheduler (src/core/sched.h) with the
 * built-in kernels (src/core/kernel.h), without Python.
 *
 * Built and run by tests/c/run.sh (by default under ThreadSanitizer).
 * Usage: test_sched [scale]   scale (default 1.0) multiplies the sizes of
 * the big graphs; the sanitizer runs may use a smaller one.
 *
 * Prints one line per test and "N passed, M failed" at the end; the exit
 * status is non-zero when anything failed.
 */
#include "core/sched.h"
#include "kernels/registry.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------ harness */

static int g_failures_here;   /* CHECK failures inside the current test */
static double g_scale = 1.0;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "    CHECK failed at %s:%d: %s\n", __FILE__,       \
                    __LINE__, #cond);                                          \
            __atomic_add_fetch(&g_failures_here, 1, __ATOMIC_RELAXED);         \
        }                                                                      \
    } while (0)

#define CHECK_MSG(cond, ...)                                                   \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "    CHECK failed at %s:%d: %s: ", __FILE__,       \
                    __LINE__, #cond);                                          \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            __atomic_add_fetch(&g_failures_here, 1, __ATOMIC_RELAXED);         \
        }                                                                      \
    } while (0)

/* Stop the current test (a setup step failed). */
#define REQUIRE(cond)                                                          \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "    REQUIRE failed at %s:%d: %s\n", __FILE__,     \
                    __LINE__, #cond);                                          \
            __atomic_add_fetch(&g_failures_here, 1, __ATOMIC_RELAXED);         \
            return;                                                            \
        }                                                                      \
    } while (0)

static double now_s(void)
{
    return (double)cd_now_ns() * 1e-9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static int64_t scaled(int64_t n)
{
    int64_t v = (int64_t)((double)n * g_scale);
    return v < 16 ? 16 : v;
}

/* ------------------------------------------------------ plan building */

static int32_t add_value_i64(cd_plan *p, int64_t v)
{
    cd_err err;
    int32_t i = cd_plan_add_node(p, CD_NODE_VALUE, &err);
    cd_chunk *c;
    if (i < 0)
        return i;
    c = cd_chunk_new(CD_INT64, 0, NULL, &err);
    if (c == NULL)
        return err.code;
    *(int64_t *)c->data = v;
    p->nodes[i].chunk = c;   /* the plan owns it now (freed by cd_plan_free) */
    return i;
}

static int32_t add_value_f64(cd_plan *p, double v)
{
    cd_err err;
    int32_t i = cd_plan_add_node(p, CD_NODE_VALUE, &err);
    cd_chunk *c;
    if (i < 0)
        return i;
    c = cd_chunk_new(CD_FLOAT64, 0, NULL, &err);
    if (c == NULL)
        return err.code;
    *(double *)c->data = v;
    p->nodes[i].chunk = c;
    return i;
}

/* A VALUE node holding a float64 vector of n copies of v. */
static int32_t add_value_vec(cd_plan *p, int64_t n, double v)
{
    cd_err err;
    int32_t i = cd_plan_add_node(p, CD_NODE_VALUE, &err);
    cd_chunk *c;
    if (i < 0)
        return i;
    c = cd_chunk_new(CD_FLOAT64, 1, &n, &err);
    if (c == NULL)
        return err.code;
    for (int64_t k = 0; k < n; k++)
        ((double *)c->data)[k] = v;
    p->nodes[i].chunk = c;
    return i;
}

/* A C node running kernel `name` on args. */
static int32_t add_task(cd_plan *p, const char *name, int32_t nargs, const int32_t *args)
{
    cd_err err;
    const cd_kernel_desc *k = cd_kernel_find(name);
    int32_t i;
    if (k == NULL) {
        fprintf(stderr, "    no kernel named '%s'\n", name);
        return CD_EINTERNAL;
    }
    i = cd_plan_add_node(p, CD_NODE_C, &err);
    if (i < 0)
        return i;
    cd_plan_kcall(p, i)->kernel = k;
    if (cd_plan_set_args(p, i, nargs, args, &err) < 0)
        return err.code;
    return i;
}

/* Sum the nodes of `level` (n of them; overwritten) with "sum" nodes of
 * fan-in `fanin` until one is left; returns the root. */
static int32_t add_sum_tree(cd_plan *p, int32_t *level, int64_t n, int fanin)
{
    while (n > 1) {
        int64_t m = 0;
        for (int64_t k = 0; k < n; k += fanin) {
            int32_t cnt = (int32_t)(n - k < fanin ? n - k : fanin);
            int32_t s = add_task(p, "sum", cnt, level + k);
            if (s < 0)
                return s;
            level[m++] = s;
        }
        n = m;
    }
    return level[0];
}

/*
 * The reduction tree: `nleaves` leaves summed with fan-in 8.
 *   ones_leaves == 0: leaves are VALUE nodes holding int64 k (k = 0..n-1);
 *                     the root is an int64 0-d chunk, n(n-1)/2.
 *   ones_leaves != 0: leaves are "ones" tasks of length 1 + k % 5, reading
 *                     five shared VALUE nodes; the root is a float64 0-d
 *                     chunk, sum of the lengths (exact in double).
 * *expect gets the expected sum, *root the output node.
 */
static cd_plan *build_tree(int64_t nleaves, int ones_leaves, int64_t ones_len_extra,
                           int64_t *expect, int32_t *root)
{
    cd_err err;
    cd_plan *p = cd_plan_new(&err);
    int32_t *level = malloc((size_t)nleaves * sizeof(int32_t));
    int32_t lens[5];
    int64_t sum = 0;
    if (p == NULL || level == NULL)
        goto fail;
    if (ones_leaves)
        for (int k = 0; k < 5; k++)
            if ((lens[k] = add_value_i64(p, 1 + k + ones_len_extra)) < 0)
                goto fail;
    for (int64_t k = 0; k < nleaves; k++) {
        int32_t i;
        if (ones_leaves) {
            i = add_task(p, "ones", 1, &lens[k % 5]);
            sum += 1 + k % 5 + ones_len_extra;
        } else {
            i = add_value_i64(p, k);
            sum += k;
        }
        if (i < 0)
            goto fail;
        level[k] = i;
    }
    *root = add_sum_tree(p, level, nleaves, 8);
    if (*root < 0 || cd_plan_add_output(p, *root, &err) < 0)
        goto fail;
    if (cd_plan_finalize(p, NULL, &err) < 0) {
        fprintf(stderr, "    finalize: %s\n", err.msg);
        goto fail;
    }
    free(level);
    *expect = sum;
    return p;
fail:
    free(level);
    cd_plan_free(p);
    return NULL;
}

static int root_equals(const cd_plan *p, int32_t root, int64_t expect, int ones_leaves)
{
    const cd_chunk *c = p->nodes[root].chunk;
    if (c == NULL || c->ndim != 0) {
        fprintf(stderr, "    root has no 0-d chunk\n");
        return 0;
    }
    if (ones_leaves) {
        if (c->dtype != CD_FLOAT64 || *(const double *)c->data != (double)expect) {
            fprintf(stderr, "    root: %s %.17g, expected %lld\n", cd_dtype_name[c->dtype],
                    c->dtype == CD_FLOAT64 ? *(const double *)c->data : -1.0, (long long)expect);
            return 0;
        }
    } else {
        if (c->dtype != CD_INT64 || *(const int64_t *)c->data != expect) {
            fprintf(stderr, "    root: %s %lld, expected %lld\n", cd_dtype_name[c->dtype],
                    c->dtype == CD_INT64 ? (long long)*(const int64_t *)c->data : -1LL,
                    (long long)expect);
            return 0;
        }
    }
    return 1;
}

/* --------------------------------------------------------------- tests */

static void test_kernels_registered(void)
{
    const char *names[] = {"add", "sum", "ones", "spin", "fail", "dot"};
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        const cd_kernel_desc *d = cd_kernel_find(names[k]);
        CHECK_MSG(d != NULL && strcmp(d->name, names[k]) == 0, "kernel %s", names[k]);
    }
    CHECK(cd_kernel_find("no such kernel") == NULL);
    CHECK(cd_kernel_find(NULL) == NULL);
}

static void test_small_plan(void)
{
    /* add(ones(3), ones(3)) summed: 6.0; the shared VALUE is read twice. */
    cd_err err;
    cd_stats st;
    cd_run_opts o = {1, 0, 0};
    cd_plan *p = cd_plan_new(&err);
    int32_t n, a, b, c, s, args[2];
    REQUIRE(p != NULL);
    REQUIRE((n = add_value_i64(p, 3)) >= 0);
    REQUIRE((a = add_task(p, "ones", 1, &n)) >= 0);
    REQUIRE((b = add_task(p, "ones", 1, &n)) >= 0);
    args[0] = a;
    args[1] = b;
    REQUIRE((c = add_task(p, "add", 2, args)) >= 0);
    REQUIRE((s = add_task(p, "sum", 1, &c)) >= 0);
    REQUIRE(cd_plan_add_output(p, s, &err) == 0);
    REQUIRE(cd_plan_add_output(p, c, &err) == 0);
    REQUIRE(cd_plan_finalize(p, NULL, &err) == 0);
    CHECK(p->ntasks == 4);
    /* priorities: every node after its dependencies */
    for (int32_t i = 0; i < p->n; i++)
        for (int32_t j = 0; j < p->nodes[i].ndeps; j++)
            CHECK(p->nodes[cd_plan_node_deps(p, i)[j]].priority < p->nodes[i].priority);
    CHECK(p->nodes[a].flags & CD_NF_C_CONSUMER);
    CHECK(p->nodes[s].flags & CD_NF_OUTPUT);
    for (int rep = 0; rep < 3; rep++) {
        memset(&st, 0, sizeof(st));
        CHECK_MSG(cd_run_plan_blocking(p, &o, &st, &err) == 0, "%s", err.msg);
        CHECK(st.done == 4 && st.total == 4);
        CHECK(p->nodes[s].chunk != NULL && p->nodes[s].chunk->dtype == CD_FLOAT64 &&
              *(double *)p->nodes[s].chunk->data == 6.0);
        /* a second output stays too */
        CHECK(p->nodes[c].chunk != NULL && p->nodes[c].chunk->ndim == 1 &&
              p->nodes[c].chunk->shape[0] == 3 && ((double *)p->nodes[c].chunk->data)[2] == 2.0);
        /* intermediates are released */
        CHECK(p->nodes[a].chunk == NULL && p->nodes[b].chunk == NULL);
    }
    cd_plan_free(p);
}

static void test_reduction_tree(void)
{
    int64_t nleaves = scaled(100000), expect = 0;
    int32_t root = -1;
    cd_err err;
    cd_plan *p = build_tree(nleaves, 0, 0, &expect, &root);
    int workers[] = {1, 2, 4, 2, 1};
    REQUIRE(p != NULL);
    for (size_t w = 0; w < sizeof(workers) / sizeof(workers[0]); w++) {
        cd_run_opts o = {workers[w], 0, 0};
        cd_stats st;
        double t0 = now_s();
        memset(&st, 0, sizeof(st));
        CHECK_MSG(cd_run_plan_blocking(p, &o, &st, &err) == 0, "%s", err.msg);
        CHECK(st.done == p->ntasks && st.total == p->ntasks);
        CHECK(root_equals(p, root, expect, 0));
        printf("    value leaves: %lld leaves, %d tasks, %d workers: %.3f s\n",
               (long long)nleaves, (int)p->ntasks, workers[w], now_s() - t0);
    }
    cd_plan_free(p);
}

static void test_reduction_tree_ones(void)
{
    /* ~100k tasks: ones leaves plus the sum tree. */
    int64_t nleaves = scaled(87500), expect = 0;
    int32_t root = -1;
    cd_err err;
    cd_plan *p = build_tree(nleaves, 1, 0, &expect, &root);
    int workers[] = {1, 2, 4};
    REQUIRE(p != NULL);
    for (size_t w = 0; w < sizeof(workers) / sizeof(workers[0]); w++) {
        cd_run_opts o = {workers[w], 0, 0};
        cd_stats st;
        double t0 = now_s();
        memset(&st, 0, sizeof(st));
        CHECK_MSG(cd_run_plan_blocking(p, &o, &st, &err) == 0, "%s", err.msg);
        CHECK(st.done == p->ntasks && st.total == p->ntasks);
        CHECK(root_equals(p, root, expect, 1));
        CHECK(st.bytes_held >= 0);
        printf("    ones leaves: %d tasks, %d workers: %.3f s\n", (int)p->ntasks, workers[w],
               now_s() - t0);
    }
    cd_plan_free(p);
}

static void test_memory_order(void)
{
    /*
     * 4096 leaves of 1000 float64 (8 kB each, 32 MB together): with the
     * scheduler's depth-first priorities only a few leaves are alive at any
     * time, so the peak must stay far below the total.
     */
    int64_t expect = 0;
    int32_t root = -1;
    cd_err err;
    cd_plan *p = build_tree(4096, 1, 995, &expect, &root);
    cd_run_opts o = {2, 0, 0};
    cd_stats st;
    int64_t total = 0;
    REQUIRE(p != NULL);
    memset(&st, 0, sizeof(st));
    CHECK_MSG(cd_run_plan_blocking(p, &o, &st, &err) == 0, "%s", err.msg);
    CHECK(root_equals(p, root, expect, 1));
    total = expect * 8;
    CHECK_MSG(st.peak_bytes > 0 && st.peak_bytes < total / 16,
              "peak %lld bytes of %lld", (long long)st.peak_bytes, (long long)total);
    printf("    peak %lld bytes held for %lld bytes of leaves\n", (long long)st.peak_bytes,
           (long long)total);
    cd_plan_free(p);
}

static void test_cycle(void)
{
    cd_err err;
    int32_t cyc = -2;
    /* a -> b -> c -> a, output a */
    {
        cd_plan *p = cd_plan_new(&err);
        int32_t v, a, b, c, args[2];
        REQUIRE(p != NULL);
        REQUIRE((v = add_value_i64(p, 1)) >= 0);
        a = cd_plan_add_node(p, CD_NODE_C, &err);
        b = cd_plan_add_node(p, CD_NODE_C, &err);
        c = cd_plan_add_node(p, CD_NODE_C, &err);
        REQUIRE(a >= 0 && b >= 0 && c >= 0);
        cd_plan_kcall(p, a)->kernel = cd_plan_kcall(p, b)->kernel = cd_plan_kcall(p, c)->kernel = cd_kernel_find("sum");
        args[0] = b; args[1] = v;
        REQUIRE(cd_plan_set_args(p, a, 2, args, &err) == 0);
        args[0] = c;
        REQUIRE(cd_plan_set_args(p, b, 1, args, &err) == 0);
        args[0] = a;
        REQUIRE(cd_plan_set_args(p, c, 1, args, &err) == 0);
        REQUIRE(cd_plan_add_output(p, a, &err) == 0);
        memset(&err, 0, sizeof(err));
        CHECK(cd_plan_finalize(p, &cyc, &err) == CD_EVALUE);
        CHECK(err.code == CD_EVALUE && err.msg[0] != '\0');
        CHECK_MSG(cyc == a || cyc == b || cyc == c, "cycle node %d", (int)cyc);
        CHECK(!p->finalized);
        cd_plan_free(p);
    }
    /* a node that reads itself */
    {
        cd_plan *p = cd_plan_new(&err);
        int32_t a;
        REQUIRE(p != NULL);
        a = cd_plan_add_node(p, CD_NODE_C, &err);
        REQUIRE(a == 0);
        cd_plan_kcall(p, a)->kernel = cd_kernel_find("sum");
        REQUIRE(cd_plan_set_args(p, a, 1, &a, &err) == 0);
        REQUIRE(cd_plan_add_output(p, a, &err) == 0);
        cyc = -2;
        CHECK(cd_plan_finalize(p, &cyc, &err) == CD_EVALUE);
        CHECK(cyc == a);
        cd_plan_free(p);
    }
    /* a cycle that no output reaches is still found */
    {
        cd_plan *p = cd_plan_new(&err);
        int32_t v, s, x, y;
        REQUIRE(p != NULL);
        REQUIRE((v = add_value_i64(p, 1)) >= 0);
        REQUIRE((s = add_task(p, "sum", 1, &v)) >= 0);
        x = cd_plan_add_node(p, CD_NODE_C, &err);
        y = cd_plan_add_node(p, CD_NODE_C, &err);
        REQUIRE(x >= 0 && y >= 0);
        cd_plan_kcall(p, x)->kernel = cd_plan_kcall(p, y)->kernel = cd_kernel_find("sum");
        REQUIRE(cd_plan_set_args(p, x, 1, &y, &err) == 0);
        REQUIRE(cd_plan_set_args(p, y, 1, &x, &err) == 0);
        REQUIRE(cd_plan_add_output(p, s, &err) == 0);
        cyc = -2;
        CHECK(cd_plan_finalize(p, &cyc, &err) == CD_EVALUE);
        CHECK_MSG(cyc == x || cyc == y, "cycle node %d", (int)cyc);
        cd_plan_free(p);
    }
    /* no cycle: cycle_node is -1 */
    {
        cd_plan *p = cd_plan_new(&err);
        int32_t v, s;
        REQUIRE(p != NULL);
        REQUIRE((v = add_value_i64(p, 1)) >= 0);
        REQUIRE((s = add_task(p, "sum", 1, &v)) >= 0);
        REQUIRE(cd_plan_add_output(p, s, &err) == 0);
        cyc = -2;
        CHECK(cd_plan_finalize(p, &cyc, &err) == 0);
        CHECK(cyc == -1);
        cd_plan_free(p);
    }
}

static void test_bad_plans(void)
{
    cd_err err;
    cd_plan *p = cd_plan_new(&err);
    int32_t s, bad = 12345;
    cd_run_opts o = {1, 0, 0};
    REQUIRE(p != NULL);
    CHECK(cd_plan_add_output(p, 0, &err) < 0);        /* no such node */
    CHECK(cd_plan_set_args(p, 3, 0, NULL, &err) < 0);
    s = cd_plan_add_node(p, CD_NODE_C, &err);
    REQUIRE(s == 0);
    cd_plan_kcall(p, s)->kernel = cd_kernel_find("sum");
    /* an argument naming a node that does not exist: set_args or finalize says no */
    if (cd_plan_set_args(p, s, 1, &bad, &err) == 0) {
        CHECK(cd_plan_finalize(p, NULL, &err) < 0);
        CHECK(!p->finalized);
        /* and a run of an unfinalized plan is refused */
        CHECK(cd_run_new(p, &o, &err) == NULL);
    }
    cd_plan_free(p);

    /* an empty plan runs and finishes at once */
    p = cd_plan_new(&err);
    REQUIRE(p != NULL);
    REQUIRE(cd_plan_finalize(p, NULL, &err) == 0);
    CHECK(cd_run_plan_blocking(p, &o, NULL, &err) == 0);
    cd_plan_free(p);
}

static void test_failing_task(void)
{
    cd_err err;
    int64_t expect = 0;
    int32_t root = -1;
    /* the error of a "fail" task comes back, with the failing node */
    {
        cd_plan *p = cd_plan_new(&err);
        int32_t v, f, s, args[2];
        cd_run_opts o = {2, 0, 0};
        cd_run *r;
        int32_t node = -2;
        const cd_err *e;
        int w;
        REQUIRE(p != NULL);
        REQUIRE((v = add_value_i64(p, 1)) >= 0);
        REQUIRE((f = add_task(p, "fail", 1, &v)) >= 0);
        args[0] = f; args[1] = v;
        REQUIRE((s = add_task(p, "sum", 2, args)) >= 0);
        REQUIRE(cd_plan_add_output(p, s, &err) == 0);
        REQUIRE(cd_plan_finalize(p, NULL, &err) == 0);
        memset(&err, 0, sizeof(err));
        CHECK(cd_run_plan_blocking(p, &o, NULL, &err) == CD_EVALUE);
        CHECK_MSG(strstr(err.msg, "fail") != NULL, "message: '%s'", err.msg);
        CHECK(p->nodes[s].chunk == NULL);

        /* the same through the run API: the failing node is reported */
        r = cd_run_new(p, &o, &err);
        REQUIRE(r != NULL);
        REQUIRE(cd_run_start(r, &err) == 0);
        do
            w = cd_run_wait(r, 100 * 1000000LL);
        while (w != CD_WAIT_FINISHED);
        CHECK(cd_run_failed(r));
        e = cd_run_error(r, &node);
        CHECK(e != NULL && e->code == CD_EVALUE);
        CHECK_MSG(node == f, "error node %d, fail node %d", (int)node, (int)f);
        cd_run_free(r);
        /* a plan can run again after a failure (and fails again) */
        CHECK(cd_run_plan_blocking(p, &o, NULL, &err) == CD_EVALUE);
        cd_plan_free(p);
    }
    /* one failing leaf in a big tree stops the run; nothing leaks */
    {
        cd_plan *p = build_tree(scaled(20000), 1, 200, &expect, &root);
        cd_stats st;
        REQUIRE(p != NULL);
        /* turn one leaf ("ones") into "fail" (same inputs) */
        for (int32_t i = 0; i < p->n; i++)
            if (p->nodes[i].kind == CD_NODE_C && strcmp(cd_plan_kcall(p, i)->kernel->name, "ones") == 0 &&
                i > p->n / 3) {
                cd_plan_kcall(p, i)->kernel = cd_kernel_find("fail");
                break;
            }
        for (int w = 1; w <= 4; w *= 2) {
            cd_run_opts o = {w, 0, 0};
            memset(&st, 0, sizeof(st));
            CHECK(cd_run_plan_blocking(p, &o, &st, &err) == CD_EVALUE);
            CHECK(st.done < st.total);
            CHECK(p->nodes[root].chunk == NULL);
        }
        cd_plan_free(p);
    }
}

typedef struct canceller {
    cd_run *run;
    int delay_ms;
} canceller;

static void *cancel_main(void *arg)
{
    canceller *c = arg;
    sleep_ms(c->delay_ms);
    cd_run_cancel(c->run, CD_ECANCEL, "cancelled by the test");
    return NULL;
}

static void cancel_spin(int caller_runs_c)
{
    cd_err err;
    cd_plan *p = cd_plan_new(&err);
    int32_t v, sp, s, node = -2, others[4], nothers = 0;
    cd_run_opts o = {2, 0, caller_runs_c};
    cd_run *r;
    canceller c;
    pthread_t th;
    const cd_err *e;
    double t0, dt;
    REQUIRE(p != NULL);
    REQUIRE((v = add_value_f64(p, 10.0)) >= 0);
    REQUIRE((sp = add_task(p, "spin", 1, &v)) >= 0);
    others[nothers++] = sp;
    /* a second spin, so that both threads of the run are busy */
    REQUIRE((others[nothers] = add_task(p, "spin", 1, &v)) >= 0);
    nothers++;
    REQUIRE((s = add_task(p, "sum", nothers, others)) >= 0);
    REQUIRE(cd_plan_add_output(p, s, &err) == 0);
    REQUIRE(cd_plan_finalize(p, NULL, &err) == 0);

    t0 = now_s();
    r = cd_run_new(p, &o, &err);
    REQUIRE(r != NULL);
    REQUIRE(cd_run_start(r, &err) == 0);
    c.run = r;
    c.delay_ms = 50;
    REQUIRE(pthread_create(&th, NULL, cancel_main, &c) == 0);
    for (;;) {
        int w;
        if (caller_runs_c)
            cd_run_help(r, 0);
        w = cd_run_wait(r, 20 * 1000000LL);
        if (w == CD_WAIT_FINISHED)
            break;
        if (now_s() - t0 > 30.0) {
            CHECK_MSG(0, "run not finished 30 s after the start");
            cd_run_cancel(r, CD_ECANCEL, "test gave up");
        }
    }
    dt = now_s() - t0;
    pthread_join(th, NULL);
    CHECK(cd_run_failed(r));
    e = cd_run_error(r, &node);
    CHECK(e != NULL && e->code == CD_ECANCEL);
    CHECK(node == -1);
    CHECK_MSG(dt < 3.0, "cancelled 10 s spin took %.3f s", dt);
    printf("    cancel (caller_runs_c=%d): finished %.3f s after the start\n", caller_runs_c, dt);
    cd_run_free(r);
    CHECK(p->nodes[s].chunk == NULL);
    cd_plan_free(p);
}

static void test_cancel(void)
{
    cancel_spin(0);
    cancel_spin(1);
}

static void test_records(void)
{
    int64_t expect = 0;
    int32_t root = -1;
    cd_err err;
    cd_plan *p = build_tree(scaled(5000), 1, 0, &expect, &root);
    cd_run_opts o = {2, 1, 1};
    cd_run *r;
    const cd_record *rec;
    int64_t n = -1;
    cd_stats st;
    char *seen;
    REQUIRE(p != NULL);
    r = cd_run_new(p, &o, &err);
    REQUIRE(r != NULL);
    CHECK(cd_run_plan(r) == p);
    cd_run_set_user(r, &expect);
    CHECK(cd_run_user(r) == &expect);
    REQUIRE(cd_run_start(r, &err) == 0);
    for (;;) {
        cd_run_help(r, 0);
        if (cd_run_wait(r, 20 * 1000000LL) == CD_WAIT_FINISHED)
            break;
    }
    CHECK(!cd_run_failed(r));
    CHECK(cd_run_error(r, NULL) == NULL);
    cd_run_stats(r, &st);
    CHECK(st.done == p->ntasks && st.total == p->ntasks && st.running == 0);
    rec = cd_run_records(r, &n);
    CHECK(n == p->ntasks);
    seen = calloc((size_t)p->n, 1);
    REQUIRE(seen != NULL);
    for (int64_t k = 0; rec != NULL && k < n; k++) {
        CHECK(rec[k].node >= 0 && rec[k].node < p->n);
        if (rec[k].node < 0 || rec[k].node >= p->n)
            continue;
        CHECK(p->nodes[rec[k].node].kind == CD_NODE_C);
        CHECK(!seen[rec[k].node]);
        seen[rec[k].node] = 1;
        CHECK(rec[k].start_ns <= rec[k].end_ns);
        CHECK(rec[k].worker >= -1 && rec[k].worker < 256);
        CHECK(rec[k].nbytes > 0);
    }
    free(seen);
    cd_run_free(r);
    CHECK(root_equals(p, root, expect, 1));
    cd_plan_free(p);
}

static void test_dot(void)
{
    /* BLAS through the kernels: ones(1000) . twos(1000) == 2000 */
    cd_err err;
    cd_plan *p = cd_plan_new(&err);
    cd_run_opts o = {1, 0, 0};
    int32_t a, b, d, args[2];
    REQUIRE(p != NULL);
    REQUIRE((a = add_value_vec(p, 1000, 1.0)) >= 0);
    REQUIRE((b = add_value_vec(p, 1000, 2.0)) >= 0);
    args[0] = a; args[1] = b;
    REQUIRE((d = add_task(p, "dot", 2, args)) >= 0);
    REQUIRE(cd_plan_add_output(p, d, &err) == 0);
    REQUIRE(cd_plan_finalize(p, NULL, &err) == 0);
    CHECK_MSG(cd_run_plan_blocking(p, &o, NULL, &err) == 0, "%s", err.msg);
    CHECK(p->nodes[d].chunk != NULL && p->nodes[d].chunk->ndim == 0 &&
          p->nodes[d].chunk->dtype == CD_FLOAT64 && *(double *)p->nodes[d].chunk->data == 2000.0);
    cd_plan_free(p);
}

typedef struct concurrent_arg {
    int id;
    int failures;
} concurrent_arg;

static void *concurrent_main(void *arg)
{
    concurrent_arg *ca = arg;
    int64_t expect = 0;
    int32_t root = -1;
    cd_err err;
    int should_fail = ca->id == 3;
    cd_plan *p = build_tree(scaled(10000) + 37 * ca->id, ca->id % 2, 3 * ca->id, &expect, &root);
    if (p == NULL) {
        ca->failures++;
        return NULL;
    }
    if (should_fail) {
        /* this thread's graph has a failing task: only it must see errors */
        int32_t v = 0, f, args[2];
        cd_plan_free(p);
        p = cd_plan_new(&err);
        if (p == NULL || (v = add_value_f64(p, 0.05)) < 0 ||
            (args[0] = add_task(p, "spin", 1, &v)) < 0 ||
            (args[1] = f = add_task(p, "fail", 0, NULL)) < 0 ||
            (root = add_task(p, "sum", 2, args)) < 0 ||
            cd_plan_add_output(p, root, &err) < 0 || cd_plan_finalize(p, NULL, &err) < 0) {
            ca->failures++;
            cd_plan_free(p);
            return NULL;
        }
        (void)f;
    }
    for (int rep = 0; rep < 4; rep++) {
        cd_run_opts o = {1 + (ca->id + rep) % 3, 0, 0};
        int rc = cd_run_plan_blocking(p, &o, NULL, &err);
        if (should_fail) {
            if (rc != CD_EVALUE) {
                fprintf(stderr, "    thread %d: expected a failure, got %d\n", ca->id, rc);
                ca->failures++;
            }
        } else if (rc != 0) {
            fprintf(stderr, "    thread %d: run failed: %s\n", ca->id, err.msg);
            ca->failures++;
        } else if (!root_equals(p, root, expect, ca->id % 2)) {
            ca->failures++;
        }
    }
    cd_plan_free(p);
    return NULL;
}

static void test_concurrent_runs(void)
{
    enum { NT = 5 };
    pthread_t th[NT];
    concurrent_arg args[NT];
    for (int t = 0; t < NT; t++) {
        args[t].id = t;
        args[t].failures = 0;
        REQUIRE(pthread_create(&th[t], NULL, concurrent_main, &args[t]) == 0);
    }
    for (int t = 0; t < NT; t++) {
        pthread_join(th[t], NULL);
        CHECK_MSG(args[t].failures == 0, "thread %d: %d failures", t, args[t].failures);
    }
}

static void test_pool(void)
{
    int n0 = cd_pool_default_workers();
    CHECK(n0 >= 1);
    cd_pool_set_default_workers(3);
    CHECK(cd_pool_default_workers() == 3);
    CHECK(cd_pool_current_worker() == -1);
    CHECK(cd_pool_size() >= 0);
    {
        /* num_workers <= 0 uses the default */
        int64_t expect = 0;
        int32_t root = -1;
        cd_err err;
        cd_plan *p = build_tree(1000, 0, 0, &expect, &root);
        cd_run_opts o = {0, 0, 0};
        REQUIRE(p != NULL);
        CHECK(cd_run_plan_blocking(p, &o, NULL, &err) == 0);
        CHECK(root_equals(p, root, expect, 0));
        cd_plan_free(p);
    }
    cd_pool_set_default_workers(n0);
    /* shut down and start again */
    cd_pool_shutdown();
    CHECK(cd_pool_size() == 0);
    {
        int64_t expect = 0;
        int32_t root = -1;
        cd_err err;
        cd_plan *p = build_tree(1000, 1, 0, &expect, &root);
        cd_run_opts o = {2, 0, 0};
        REQUIRE(p != NULL);
        CHECK(cd_run_plan_blocking(p, &o, NULL, &err) == 0);
        CHECK(root_equals(p, root, expect, 1));
        CHECK(cd_pool_size() >= 1);
        cd_plan_free(p);
    }
}

/* A chunk spilled to a temporary file keeps its bytes, leaves no file, and
 * moves from live to spilled bytes until it is freed; a bad directory is an
 * error that leaves the chunk as it was. */
static void test_spill(void)
{
    cd_err err = {0, ""};
    int64_t shape[1] = {1 << 18};                  /* 2 MiB of float64 */
    int64_t live = cd_chunk_live_bytes(), sp = cd_chunk_spilled_bytes();
    cd_chunk *c = cd_chunk_new(CD_FLOAT64, 1, shape, &err);
    cd_chunk *small;
    int64_t small_shape[1] = {10};
    CHECK(c != NULL);
    if (c == NULL)
        return;
    for (int64_t i = 0; i < shape[0]; i++)
        ((double *)c->data)[i] = (double)i * 0.5;
    CHECK(cd_chunk_spill(c, "/nonexistent-cdask-dir", &err) == CD_EIO);
    CHECK(strstr(err.msg, "/nonexistent-cdask-dir") != NULL);
    CHECK(!c->spilled && ((double *)c->data)[7] == 3.5);
    CHECK(cd_chunk_spill(c, "/tmp", &err) == 0);
    CHECK(c->spilled && c->mapped);
    CHECK(cd_chunk_live_bytes() == live);
    CHECK(cd_chunk_spilled_bytes() == sp + c->nbytes);
    for (int64_t i = 0; i < shape[0]; i += 4099)
        CHECK(((double *)c->data)[i] == (double)i * 0.5);
    cd_chunk_drop_pages(c, c->data, c->nbytes);      /* read back from the file */
    CHECK(((double *)c->data)[shape[0] - 1] == (double)(shape[0] - 1) * 0.5);
    CHECK(cd_chunk_spill(c, "/tmp", &err) == CD_EVALUE);   /* once is enough */
    cd_chunk_decref(c);
    CHECK(cd_chunk_spilled_bytes() == sp);
    CHECK(cd_chunk_live_bytes() == live);
    small = cd_chunk_new(CD_FLOAT64, 1, small_shape, &err);
    CHECK(small != NULL && cd_chunk_spill(small, "/tmp", &err) == CD_EVALUE);
    cd_chunk_decref(small);
}

/* A freed big block is handed to the next block of its size (no fresh
 * mapping to fault in), and the accounting stays exact. */
static void test_reuse(void)
{
    cd_err err = {0, ""};
    int64_t shape[1] = {(1 << 18) + 3};          /* just over 2 MiB of float64 */
    int64_t live = cd_chunk_live_bytes();
    cd_chunk *a = cd_chunk_new(CD_FLOAT64, 1, shape, &err), *b;
    void *pa;
    CHECK(a != NULL);
    if (a == NULL)
        return;
    ((double *)a->data)[shape[0] - 1] = 1.5;
    pa = a->data;
    cd_chunk_decref(a);
    CHECK(cd_chunk_live_bytes() == live);
    b = cd_chunk_new(CD_FLOAT64, 1, shape, &err);
    CHECK(b != NULL && b->data == pa);
    CHECK(cd_chunk_live_bytes() == live + b->nbytes);
    cd_chunk_decref(b);
    CHECK(cd_chunk_live_bytes() == live);
}

/* ---------------------------------------------------------------- main */

typedef struct test_case {
    const char *name;
    void (*fn)(void);
} test_case;

static const test_case tests[] = {
    {"kernels_registered", test_kernels_registered},
    {"small_plan", test_small_plan},
    {"reduction_tree", test_reduction_tree},
    {"reduction_tree_ones", test_reduction_tree_ones},
    {"memory_order", test_memory_order},
    {"cycle", test_cycle},
    {"bad_plans", test_bad_plans},
    {"failing_task", test_failing_task},
    {"cancel", test_cancel},
    {"records", test_records},
    {"dot", test_dot},
    {"concurrent_runs", test_concurrent_runs},
    {"pool", test_pool},
    {"spill", test_spill},
    {"reuse", test_reuse},
};

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    int64_t live0;
    const char *only = NULL;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1)
        g_scale = atof(argv[1]);
    if (argc > 2)
        only = argv[2];
    if (!(g_scale > 0.0))
        g_scale = 1.0;
    live0 = cd_chunk_live_bytes();
    for (size_t k = 0; k < sizeof(tests) / sizeof(tests[0]); k++) {
        double t0 = now_s();
        if (only != NULL && strcmp(only, tests[k].name) != 0)
            continue;
        g_failures_here = 0;
        printf("%s ...\n", tests[k].name);
        tests[k].fn();
        if (g_failures_here == 0) {
            passed++;
            printf("ok   %s (%.2f s)\n", tests[k].name, now_s() - t0);
        } else {
            failed++;
            printf("FAIL %s (%d checks)\n", tests[k].name, g_failures_here);
        }
    }
    /* every chunk made by the runs has been freed */
    cd_pool_shutdown();
    g_failures_here = 0;
    CHECK_MSG(cd_chunk_live_bytes() == live0, "live bytes %lld at the end, %lld at the start",
              (long long)cd_chunk_live_bytes(), (long long)live0);
    if (g_failures_here == 0) {
        passed++;
        printf("ok   live_bytes_back_to_start\n");
    } else {
        failed++;
        printf("FAIL live_bytes_back_to_start\n");
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
