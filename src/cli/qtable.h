/*
 * qtable.h - the records of a query (key=value lines) as aligned tables,
 * for a person at a terminal: `ferry ls` and `ferry info` on a tty.  One
 * table per record type, in the order the types first came, a header of
 * the first record's keys; a digest is shortened.  Scripts get the lines
 * (stdout not a terminal) or --json.  One thread.
 */
#ifndef FY_CLI_QTABLE_H
#define FY_CLI_QTABLE_H

#include <stdio.h>

typedef struct fy_cli_qtable fy_cli_qtable;

/* NULL when out of memory (the caller prints lines instead). */
fy_cli_qtable *fy_cli_qtable_new(void);
/* Keep one record.  0 or -ENOMEM. */
int fy_cli_qtable_add(fy_cli_qtable *t, const char *rec);
/* Print the tables to f. */
void fy_cli_qtable_print(const fy_cli_qtable *t, FILE *f);
void fy_cli_qtable_free(fy_cli_qtable *t); /* NULL is ignored */

#endif
