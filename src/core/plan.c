/*
 * plan.c - building plans (interface: plan.h): growing the node, call and
 * argument arrays, and freeing a plan with the values it still holds.
 * Pure C.
 *
 * Nodes are 64 bytes, one cache line each, in an array aligned to 64 bytes
 * (2 MiB when big, so that huge pages cover it): finalize, the run and the
 * frees walk a million of them.  What a C node calls (cd_kcall) lives in a
 * parallel array so that it does not widen the node.
 */
#include "core/plan.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(void *) != 8 || sizeof(cd_node) == 64, "a node is one cache line");

cd_plan *cd_plan_new(cd_err *err)
{
    cd_plan *p = calloc(1, sizeof(*p));
    if (p == NULL)
        cd_err_set(err, CD_ENOMEM, "out of memory allocating a plan");
    return p;
}

void cd_plan_free(cd_plan *p)
{
    if (p == NULL)
        return;
    for (int32_t i = 0; i < p->n && !p->values_released; i++) {
        cd_node *nd = &p->nodes[i];
        if (nd->chunk != NULL)
            cd_chunk_decref(nd->chunk);
        if (nd->pyval != NULL && cd_chunk_owner_release != NULL)
            cd_chunk_owner_release(nd->pyval);
    }
    free(p->init_c);
    free(p->init_py);
    free(p->nodes);
    free(p->kcalls);
    free(p->args);
    free(p->deps);
    free(p->dnts);
    free(p->outputs);
    free(p->order);
    free(p);
}

/* Grow the node arrays to cap (nodes 64-byte aligned: one line each). */
static int nodes_grow(cd_plan *p, int32_t cap, cd_err *err)
{
    size_t bytes = (size_t)cap * sizeof(cd_node);
    cd_node *nodes = NULL;
    cd_kcall *kc;
    /* big arrays start on a 2 MiB boundary, so huge pages cover all of them */
    if (posix_memalign((void **)&nodes, bytes >= ((size_t)4 << 20) ? (size_t)2 << 20 : 64, bytes) != 0 ||
        nodes == NULL)
        return cd_err_set(err, CD_ENOMEM, "out of memory growing a plan");
    kc = realloc(p->kcalls, (size_t)cap * sizeof(cd_kcall));
    if (kc == NULL) {
        free(nodes);
        return cd_err_set(err, CD_ENOMEM, "out of memory growing a plan");
    }
    p->kcalls = kc;
    cd_advise_huge(nodes, bytes);
    if (p->n > 0)
        memcpy(nodes, p->nodes, (size_t)p->n * sizeof(cd_node));
    free(p->nodes);
    p->nodes = nodes;
    p->cap = cap;
    return 0;
}

int cd_plan_reserve(cd_plan *p, int32_t n, int64_t nargs, cd_err *err)
{
    if (n > p->cap) {
        int rc = nodes_grow(p, n, err);
        if (rc < 0)
            return rc;
    }
    if (nargs > p->args_cap) {
        int32_t *a = realloc(p->args, (size_t)nargs * sizeof(int32_t));
        if (a == NULL)
            return cd_err_set(err, CD_ENOMEM, "out of memory reserving a plan");
        p->args = a;
        p->args_cap = nargs;
    }
    return 0;
}

int32_t cd_plan_add_node(cd_plan *p, int kind, cd_err *err)
{
    if (p->finalized)
        return cd_err_set(err, CD_EINTERNAL, "plan already finalized");
    if (p->n == p->cap) {
        int32_t cap = p->cap ? p->cap * 2 : 64;
        if (cap < p->cap || (size_t)cap > SIZE_MAX / sizeof(cd_node) || cap > INT32_MAX / 2)
            return cd_err_set(err, CD_EOVERFLOW, "too many tasks in one graph");
        int rc = nodes_grow(p, cap, err);
        if (rc < 0)
            return rc;
    }
    memset(&p->nodes[p->n], 0, sizeof(cd_node));
    memset(&p->kcalls[p->n], 0, sizeof(cd_kcall));
    p->nodes[p->n].kind = (uint8_t)kind;
    p->nodes[p->n].arg_off = (int32_t)p->nargs;
    return p->n++;
}

int cd_plan_set_args(cd_plan *p, int32_t i, int32_t nargs, const int32_t *args, cd_err *err)
{
    cd_node *nd;
    if (i < 0 || i >= p->n || nargs < 0)
        return cd_err_set(err, CD_EINTERNAL, "bad node %d", (int)i);
    nd = &p->nodes[i];
    if (p->nargs + nargs > INT32_MAX)
        return cd_err_set(err, CD_EOVERFLOW, "too many task arguments in one graph");
    if (p->nargs + nargs > p->args_cap) {
        int64_t cap = p->args_cap ? p->args_cap : 256;
        int32_t *a;
        while (cap < p->nargs + nargs)
            cap *= 2;
        a = realloc(p->args, (size_t)cap * sizeof(int32_t));
        if (a == NULL)
            return cd_err_set(err, CD_ENOMEM, "out of memory growing a plan");
        p->args = a;
        p->args_cap = cap;
    }
    if (nargs > 0)
        memcpy(p->args + p->nargs, args, (size_t)nargs * sizeof(int32_t));
    nd->arg_off = (int32_t)p->nargs;
    nd->nargs = nargs;
    p->nargs += nargs;
    return 0;
}

int cd_plan_add_output(cd_plan *p, int32_t i, cd_err *err)
{
    if (i < 0 || i >= p->n)
        return cd_err_set(err, CD_EINTERNAL, "bad output node %d", (int)i);
    if (p->noutputs == p->outputs_cap) {
        int32_t cap = p->outputs_cap ? p->outputs_cap * 2 : 16;
        int32_t *o = realloc(p->outputs, (size_t)cap * sizeof(int32_t));
        if (o == NULL)
            return cd_err_set(err, CD_ENOMEM, "out of memory");
        p->outputs = o;
        p->outputs_cap = cap;
    }
    p->outputs[p->noutputs++] = i;
    p->nodes[i].flags |= CD_NF_OUTPUT;
    return 0;
}
