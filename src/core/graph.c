/*
 * graph.c - graph analysis of a plan (interface: graph.h).  Pure C.
 *
 * Design.  cd_plan_finalize makes two passes over the nodes and one walk.
 * The first pass derives unique dependencies (CSR), consumer flags, each
 * node's count of dependents and of task inputs; the second lays out
 * dependents from the counts and resets the run state (waiting, refs) for
 * the first run, so that cd_run_new need not walk the nodes again.  The
 * walk - depth-first from the outputs, then from the nodes nobody reads,
 * then from whatever is left - finds cycles and numbers each node in
 * post-order: its priority.  Walking the arguments of a consumer one after
 * the other and numbering a node only after all its inputs means the inputs
 * of one consumer run back to back and the consumer becomes ready (and runs,
 * having a smaller number than the next subtree's leaves) as soon as they
 * are done, so intermediates live briefly (and a node's other consumers
 * that can be numbered then are: see "Consumers pulled forward").  `order`
 * keeps the nodes sorted
 * by priority, and the tasks with nothing to wait for are listed in that
 * order as they are numbered (the scheduler's initial ready queues).
 */
#include "core/graph.h"

#include <stdlib.h>
#include <string.h>

/* Finalize's scratch for the depth-first walk. */
typedef struct dfs_state {
    uint8_t *color;      /* 0 unseen, 1 on the stack, 2 numbered */
    int32_t *stack, *cursor;
    int32_t next_prio;
    int32_t cycle;
} dfs_state;

/*
 * Consumers pulled forward.  A node read by a few consumers (a block of a
 * file that the selections of two groups share) is held until the last of
 * them runs; in plain post-order the others may come much later, in another
 * output's subtree.  So when a node of at most CD_PULL_MAX consumers is
 * numbered, each consumer not yet seen whose inputs are all numbered now is
 * numbered next (and so on up from it): it runs as soon as the node is
 * done, and frees it.
 */
#define CD_PULL_MAX 4

static int inputs_numbered(const cd_plan *p, int32_t d, const uint8_t *color)
{
    const cd_node *dn = &p->nodes[d];
    const int32_t *dp = p->deps + dn->dep_off;
    for (int32_t j = 0; j < dn->ndeps; j++)
        if (color[dp[j]] != 2)
            return 0;
    return 1;
}

/* Push v's consumers that can be numbered now on the walk's stack (of
 * `top` entries, room for every node); the new top. */
static int64_t pull_ready(cd_plan *p, int32_t v, dfs_state *s, int64_t top)
{
    const cd_node *nd = &p->nodes[v];
    const int32_t *dt = p->dnts + nd->dnt_off;
    if (nd->ndnts > CD_PULL_MAX)
        return top;
    for (int32_t j = nd->ndnts - 1; j >= 0; j--) {
        int32_t d = dt[j];
        if (s->color[d] == 0 && inputs_numbered(p, d, s->color)) {
            s->color[d] = 1;
            s->cursor[d] = p->nodes[d].ndeps;   /* nothing left to visit: numbered next */
            s->stack[top++] = d;
        }
    }
    return top;
}

/*
 * Iterative depth-first walk from `root`, numbering nodes in post-order.
 * Tasks with nothing to wait for are appended to the plan's initial ready
 * lists as they are numbered, so the lists come out in priority order.
 * Returns -1 (and the node whose dependency closed a cycle in s->cycle)
 * when a cycle is found.
 */
static int dfs_number(cd_plan *p, int32_t root, dfs_state *s)
{
    uint8_t *color = s->color;
    int32_t *stack = s->stack, *cursor = s->cursor;
    int64_t top = 0;
    if (color[root] == 2)
        return 0;
    stack[top++] = root;
    color[root] = 1;
    cursor[root] = 0;
    while (top > 0) {
        int32_t v = stack[top - 1];
        cd_node *nd = &p->nodes[v];
        if (cursor[v] == 0) {
            /* about to visit v's inputs: start loading their nodes together */
            const int32_t *dp = p->deps + nd->dep_off;
            for (int32_t j = 0; j < nd->ndeps && j < 16; j++)
                __builtin_prefetch(&p->nodes[dp[j]], 1);
        }
        if (cursor[v] < nd->ndeps) {
            int32_t w = p->deps[nd->dep_off + cursor[v]++];
            if (color[w] == 0) {
                color[w] = 1;
                cursor[w] = 0;
                stack[top++] = w;
            } else if (color[w] == 1) {
                s->cycle = w;
                return -1;
            }
        } else {
            color[v] = 2;
            nd->priority = s->next_prio;
            p->order[s->next_prio++] = v;
            if (nd->kind != CD_NODE_VALUE && nd->waiting == 0) {
                if (nd->kind == CD_NODE_C)
                    p->init_c[p->ninit_c++] = v;
                else
                    p->init_py[p->ninit_py++] = v;
            }
            top--;
            top = pull_ready(p, v, s, top);
        }
    }
    return 0;
}

/*
 * Two passes over the nodes and one walk.  The first derives unique
 * dependencies (CSR), consumer flags, each node's count of dependents and
 * of task inputs; the second lays out dependents from the counts and
 * resets the run state (waiting, refs) for the first run, so that
 * cd_run_new need not walk the nodes again; the walk fixes priorities.
 * The nodes are the plan's biggest array: each pass over them costs more
 * than the arithmetic it does.
 */
int cd_plan_finalize(cd_plan *p, int32_t *cycle_node, cd_err *err)
{
    int32_t n = p->n, *mark = NULL, *count = NULL;
    int64_t *start = NULL;
    dfs_state ds = {NULL, NULL, NULL, 0, -1};
    int64_t ndeps = 0, k;
    int32_t ninit_c = 0, ninit_py = 0;
    size_t nn = n > 0 ? (size_t)n : 1;
    int rc = CD_ENOMEM;

    if (cycle_node != NULL)
        *cycle_node = -1;
    if (p->finalized)
        return cd_err_set(err, CD_EINTERNAL, "plan already finalized");
    for (k = 0; k < p->nargs; k++)
        if (p->args[k] < 0 || p->args[k] >= n)
            return cd_err_set(err, CD_EINTERNAL, "argument refers to missing node %d", (int)p->args[k]);

    /* (a plan whose finalize failed may be finalized again) */
    free(p->deps);
    free(p->dnts);
    free(p->order);
    free(p->init_c);
    free(p->init_py);
    p->dnts = p->init_c = p->init_py = NULL;
    p->ninit_c = p->ninit_py = 0;
    p->fresh = 0;
    mark = malloc(nn * sizeof(int32_t));
    count = calloc(nn, sizeof(int32_t));
    p->deps = malloc((size_t)(p->nargs ? p->nargs : 1) * sizeof(int32_t));
    p->order = malloc(nn * sizeof(int32_t));
    if (mark == NULL || count == NULL || p->deps == NULL || p->order == NULL)
        goto nomem;
    memset(mark, 0xff, nn * sizeof(int32_t));   /* -1 */

    /* Pass 1: unique dependencies in first-use order, consumer flags,
     * dependents counted, task inputs counted (waiting).  (Kinds may change
     * while a plan is built, so tasks are counted here.) */
    p->ntasks = 0;
    for (int32_t i = 0; i < n; i++) {
        cd_node *nd = &p->nodes[i];
        const int32_t *a = p->args + nd->arg_off;
        uint8_t flag = nd->kind == CD_NODE_C ? CD_NF_C_CONSUMER : CD_NF_PY_CONSUMER;
        int32_t waiting = 0;
        if (i + 8 < n) {
            /* the inputs of a node a few places ahead: their flags are written */
            const cd_node *ahead = &p->nodes[i + 8];
            const int32_t *aa = p->args + ahead->arg_off;
            for (int32_t j = 0; j < ahead->nargs && j < 8; j++)
                __builtin_prefetch(&p->nodes[aa[j]], 1);
        }
        nd->dep_off = (int32_t)ndeps;
        nd->ndeps = 0;
        for (int32_t j = 0; j < nd->nargs; j++) {
            int32_t d = a[j];
            if (mark[d] != i) {
                cd_node *dn = &p->nodes[d];
                mark[d] = i;
                p->deps[ndeps++] = d;
                nd->ndeps++;
                count[d]++;
                dn->flags |= flag;
                if (dn->kind != CD_NODE_VALUE)
                    waiting++;
            }
        }
        nd->waiting = waiting;
        if (nd->kind != CD_NODE_VALUE) {
            p->ntasks++;
            if (waiting == 0) {
                if (nd->kind == CD_NODE_C)
                    ninit_c++;
                else
                    ninit_py++;
            }
        }
    }
    /* Dependents: offsets from the counts, then pass 2 fills them in (each
     * node's dependents in increasing order) and resets the run state. */
    start = malloc(nn * sizeof(int64_t));
    p->dnts = malloc((size_t)(ndeps ? ndeps : 1) * sizeof(int32_t));
    p->init_c = malloc((size_t)(ninit_c ? ninit_c : 1) * sizeof(int32_t));
    p->init_py = malloc((size_t)(ninit_py ? ninit_py : 1) * sizeof(int32_t));
    if (start == NULL || p->dnts == NULL || p->init_c == NULL || p->init_py == NULL)
        goto nomem;
    {
        int64_t off = 0;
        for (int32_t i = 0; i < n; i++) {
            start[i] = off;
            off += count[i];
        }
    }
    memset(mark, 0, nn * sizeof(int32_t));     /* now: dependents filled in */
    p->nsinks = 0;
    for (int32_t i = 0; i < n; i++) {
        cd_node *nd = &p->nodes[i];
        const int32_t *dp = p->deps + nd->dep_off;
        nd->dnt_off = (int32_t)start[i];
        nd->ndnts = count[i];
        nd->refs = count[i] + ((nd->flags & CD_NF_OUTPUT) ? 1 : 0);
        if (nd->kind != CD_NODE_VALUE) {
            nd->nbytes = 0;
            if (count[i] == 0 && !(nd->flags & CD_NF_OUTPUT))
                p->nsinks++;
        }
        for (int32_t j = 0; j < nd->ndeps; j++) {
            int32_t d = dp[j];
            p->dnts[start[d] + mark[d]++] = i;
        }
    }

    /* Priorities and cycle detection. */
    ds.color = calloc(nn, 1);
    ds.stack = malloc(nn * sizeof(int32_t));
    ds.cursor = malloc(nn * sizeof(int32_t));
    if (ds.color == NULL || ds.stack == NULL || ds.cursor == NULL)
        goto nomem;
    for (int32_t o = 0; o < p->noutputs; o++)
        if (dfs_number(p, p->outputs[o], &ds) < 0)
            break;
    for (int32_t i = 0; i < n && ds.cycle < 0; i++)
        if (p->nodes[i].ndnts == 0 && ds.color[i] == 0)
            if (dfs_number(p, i, &ds) < 0)
                break;
    for (int32_t i = 0; i < n && ds.cycle < 0; i++)
        if (ds.color[i] == 0)
            if (dfs_number(p, i, &ds) < 0)
                break;
    if (ds.cycle >= 0) {
        if (cycle_node != NULL)
            *cycle_node = ds.cycle;
        rc = cd_err_set(err, CD_EVALUE, "the graph has a cycle");
        goto done;
    }
    p->finalized = 1;
    p->fresh = 1;
    rc = 0;
    goto done;
nomem:
    rc = cd_err_set(err, CD_ENOMEM, "out of memory finalizing a plan of %d tasks", (int)n);
done:
    free(mark);
    free(count);
    free(start);
    free(ds.color);
    free(ds.stack);
    free(ds.cursor);
    return rc;
}
