/*
 * report.h - a swarm run's figures, in the four forms ferry-swarm prints:
 * a readable table, JSON (every figure, every receiver), a CSV row (one
 * per run, the same columns in every mode so grids can be concatenated)
 * and the closing key=value line.  All four come from one list of
 * figures, so they never disagree.
 */
#ifndef FY_SWARM_REPORT_H
#define FY_SWARM_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "swarm/swarm.h"

/* Name of a mode ("bulk", ...) and the reverse (-EINVAL if unknown). */
const char *fy_report_mode_name(int mode);
int fy_report_mode_parse(const char *s);

void fy_report_table(FILE *f, const fy_swarm_cfg *cfg, const fy_swarm_result *res);
/* 0 or -errno (write error). */
int fy_report_json(FILE *f, const fy_swarm_cfg *cfg, const fy_swarm_result *res);
/* One row; with header first when `header`. */
void fy_report_csv(FILE *f, const fy_swarm_cfg *cfg, const fy_swarm_result *res, bool header);
/* The one key=value line (with its newline). */
void fy_report_kv(FILE *f, const fy_swarm_cfg *cfg, const fy_swarm_result *res);

#endif
