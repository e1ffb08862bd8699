/*
 * qtable.c - query records as aligned tables (qtable.h).  Records are kept
 * as they came; printing splits each into its values, so the widths of a
 * column are known before its first line is written.
 */
#include "cli/qtable.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cli/query.h"

#define COLS 16
#define SHA_SHOWN 12 /* digest characters a table shows */

struct fy_cli_qtable {
    char **rec;
    size_t n, cap;
};

fy_cli_qtable *fy_cli_qtable_new(void)
{
    return calloc(1, sizeof(fy_cli_qtable));
}

int fy_cli_qtable_add(fy_cli_qtable *t, const char *rec)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 32;
        char **r = realloc(t->rec, cap * sizeof *r);
        if (!r)
            return -ENOMEM;
        t->rec = r;
        t->cap = cap;
    }
    if (!(t->rec[t->n] = strdup(rec)))
        return -ENOMEM;
    t->n++;
    return 0;
}

/* Split rec's pairs after type= into keys and values (pointers into rec,
 * which is cut up).  Returns the number of columns. */
static int split(char *rec, char *key[COLS], char *val[COLS])
{
    int n = 0;
    for (char *p = strtok(rec, " "); p && n < COLS; p = strtok(NULL, " ")) {
        char *eq = strchr(p, '=');
        if (!eq || !strncmp(p, "type=", 5))
            continue;
        *eq = 0;
        key[n] = p;
        val[n++] = eq + 1;
    }
    return n;
}

static void shown(const char *key, const char *v, char *out, size_t cap)
{
    if (!strcmp(key, "sha256") && strlen(v) > SHA_SHOWN)
        snprintf(out, cap, "%.*s...", SHA_SHOWN, v);
    else
        snprintf(out, cap, "%s", v);
}

/* One table: the records of type `type` (columns: the first one's keys).
 * Pass 0 measures the columns, pass 1 prints. */
static void table(const fy_cli_qtable *t, const char *type, FILE *f)
{
    char *key[COLS], *val[COLS], buf[FY_QREC_MAX + 1], cell[FY_QREC_MAX + 1];
    char head[COLS][32];
    int w[COLS] = {0}, ncol = -1;

    for (int pass = 0; pass < 2; pass++) {
        bool header = pass == 1;
        for (size_t i = 0; i < t->n; i++) {
            char ty[32];
            if (!fy_cli_kv_get(t->rec[i], "type", ty, sizeof ty) || strcmp(ty, type) != 0)
                continue;
            snprintf(buf, sizeof buf, "%s", t->rec[i]);
            int n = split(buf, key, val);
            if (ncol < 0) {
                ncol = n;
                for (int c = 0; c < n; c++) {
                    snprintf(head[c], sizeof head[c], "%s", key[c]);
                    for (char *h = head[c]; *h; h++)
                        *h = (char)toupper((unsigned char)*h);
                    w[c] = (int)strlen(head[c]);
                }
            }
            if (header) {
                for (int c = 0; c < ncol; c++)
                    fprintf(f, "%-*s%s", c + 1 < ncol ? w[c] : 0, head[c],
                            c + 1 < ncol ? "  " : "\n");
                header = false;
            }
            int m = n < ncol ? n : ncol;
            for (int c = 0; c < m; c++) {
                shown(key[c], val[c], cell, sizeof cell);
                if (pass == 0 && (int)strlen(cell) > w[c])
                    w[c] = (int)strlen(cell);
                else if (pass == 1)
                    fprintf(f, "%-*s%s", c + 1 < m ? w[c] : 0, cell, c + 1 < m ? "  " : "\n");
            }
        }
    }
}

void fy_cli_qtable_print(const fy_cli_qtable *t, FILE *f)
{
    char seen[8][32];
    int nseen = 0;

    for (size_t i = 0; t && i < t->n; i++) {
        char ty[32];
        int k = 0;
        if (!fy_cli_kv_get(t->rec[i], "type", ty, sizeof ty))
            continue;
        while (k < nseen && strcmp(seen[k], ty) != 0)
            k++;
        if (k < nseen || nseen == 8)
            continue;
        snprintf(seen[nseen++], sizeof seen[0], "%s", ty);
        if (nseen > 1)
            fputc('\n', f);
        table(t, ty, f);
    }
}

void fy_cli_qtable_free(fy_cli_qtable *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->rec[i]);
    free(t->rec);
    free(t);
}
