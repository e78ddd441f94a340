/*
 * graph.h - graph analysis of a plan (plan.h): unique dependencies and
 * dependents in two flat arrays (CSR), consumer flags, cycle detection and
 * the static priority of every node.  Pure C.  Implemented in graph.c.
 *
 * The priority is the post-order of a depth-first walk from the outputs, so
 * that the inputs of one consumer are computed one after the other and each
 * intermediate is released soon after it is made; a node's other consumers
 * (at most a few) whose inputs are all numbered are numbered right after
 * it, so a node two outputs read is not held until the other output's
 * turn.  Priorities are unique, so the scheduler's ready heap never needs a
 * tie break.
 */
#ifndef CD_GRAPH_H
#define CD_GRAPH_H

#include "core/plan.h"

/*
 * Check args, derive deps and dependents, consumer flags and priorities, and
 * reset the run state of every node for the first run.  0 on success.  On a
 * cycle returns CD_EVALUE and stores a node on the cycle in *cycle_node (when
 * cycle_node is not NULL); on CD_ENOMEM or CD_EVALUE the plan is left
 * unfinalized and may be finalized again.  Called once per plan.
 */
int cd_plan_finalize(cd_plan *p, int32_t *cycle_node, cd_err *err);

#endif /* CD_GRAPH_H */
