/*
 * tree.c - directory trees: the sender's walk and the receiver's safe
 * path opening (see tree.h).
 *
 * The walk uses scandir with alphasort so a tree is always sent in the
 * same order (a rerun meets the files in the order of the first run, which
 * is what resuming across runs relies on).  The receiver never resolves a
 * path in one call: each directory component is opened with O_NOFOLLOW
 * relative to the one before, so a symlink planted under --out (or a name
 * the relay should have refused) cannot lead outside it.
 */
#include "cli/tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/state.h"
#include "ferry/err.h"
#include "ferry/klog.h"
#include "ferry/proto.h"

#define TREE_DEPTH_MAX 64

/* ---- the sender's list ------------------------------------------------------- */

static char *keep(fy_cli_tree_list *l, char *s)
{
    if (!s)
        return NULL;
    if (l->nown == l->capown) {
        size_t cap = l->capown ? 2 * l->capown : 64;
        char **o = realloc(l->own, cap * sizeof *o);
        if (!o) {
            free(s);
            return NULL;
        }
        l->own = o;
        l->capown = cap;
    }
    return l->own[l->nown++] = s;
}

static int add(fy_cli_tree_list *l, const char *file, const char *name)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        const char **f = realloc(l->files, cap * sizeof *f);
        if (f)
            l->files = f;
        const char **nm = f ? realloc(l->names, cap * sizeof *nm) : NULL;
        if (!nm)
            return -ENOMEM;
        l->names = nm;
        l->cap = cap;
    }
    l->files[l->n] = file;
    l->names[l->n++] = name;
    return 0;
}

static char *join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 2);
    if (!s)
        return NULL;
    memcpy(s, a, la);
    s[la] = '/';
    memcpy(s + la + 1, b, lb + 1);
    return s;
}

static int no_dots(const struct dirent *d)
{
    return strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0;
}

/* Add the regular files under dir (path on disk) named under `name`. */
static int walk(fy_cli_tree_list *l, const char *dir, const char *name, int depth,
                const char **bad)
{
    struct dirent **ents;
    char q[600];

    if (depth > TREE_DEPTH_MAX) {
        *bad = dir;
        return -ELOOP;
    }
    int n = scandir(dir, &ents, no_dots, alphasort);
    if (n < 0) {
        *bad = dir;
        return -errno;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char *path = rc == 0 ? keep(l, join(dir, ents[i]->d_name)) : NULL;
        char *sub = path ? keep(l, join(name, ents[i]->d_name)) : NULL;
        struct stat st;
        if (rc == 0 && !sub)
            rc = -ENOMEM;
        else if (rc == 0 && lstat(path, &st) != 0) {
            rc = -errno;
            *bad = path;
        } else if (rc == 0 && strlen(sub) > FY_NAME_MAX) {
            rc = -ENAMETOOLONG;
            *bad = path;
        } else if (rc == 0 && S_ISDIR(st.st_mode)) {
            rc = walk(l, path, sub, depth + 1, bad);
        } else if (rc == 0 && S_ISREG(st.st_mode)) {
            rc = add(l, path, sub);
        } else if (rc == 0) {
            fy_klog(FY_LOG_WARN, "not a regular file: skipped", "file=%s",
                    fy_klog_q(path, q, sizeof q));
        }
        free(ents[i]);
    }
    free(ents);
    return rc;
}

/* The last component of a directory argument ("a/b/" -> "b"); NULL for
 * one that has none ("/", ".", ".."): its files are then named without. */
static char *dir_base(const char *arg)
{
    size_t len = strlen(arg);
    while (len > 1 && arg[len - 1] == '/')
        len--;
    size_t at = len;
    while (at > 0 && arg[at - 1] != '/')
        at--;
    size_t bl = len - at;
    if (bl == 0 || (bl == 1 && arg[at] == '.') || (bl == 2 && !strncmp(arg + at, "..", 2)) ||
        arg[at] == '/')
        return NULL;
    return strndup(arg + at, bl);
}

int fy_cli_tree_expand(const char *const *args, const char *const *given, size_t n,
                       bool recursive, fy_cli_tree_list *out, const char **bad)
{
    *out = (fy_cli_tree_list){0};
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        int rc;
        if (stat(args[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            *bad = args[i];
            if (!recursive)
                return -EISDIR;
            char *base = dir_base(args[i]);
            if (base && !keep(out, base))
                return -ENOMEM;
            if (base)
                rc = walk(out, args[i], base, 1, bad);
            else
                rc = -EINVAL; /* "." or "/": name the directory itself */
        } else {
            rc = add(out, args[i], given ? given[i] : NULL);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

void fy_cli_tree_free(fy_cli_tree_list *l)
{
    for (size_t i = 0; i < l->nown; i++)
        free(l->own[i]);
    free(l->own);
    free(l->files);
    free(l->names);
    *l = (fy_cli_tree_list){0};
}

/* ---- the receiver's side ------------------------------------------------------ */

int fy_cli_tree_parent(int dirfd, const char *path, int *pdir, const char **base)
{
    /* the resume state file is ours, not a sender's to replace */
    if (fy_path_check(path, strlen(path)) < 0 || strcmp(path, FY_CLI_STATE_FILE) == 0)
        return -FY_ENAME;
    int fd = dup(dirfd);
    if (fd < 0)
        return -errno;
    const char *p = path, *slash;
    char comp[FY_NAME_MAX + 1];
    while ((slash = strchr(p, '/')) != NULL) {
        size_t len = (size_t)(slash - p);
        memcpy(comp, p, len);
        comp[len] = '\0';
        if (mkdirat(fd, comp, 0755) != 0 && errno != EEXIST) {
            int err = -errno;
            close(fd);
            return err;
        }
        int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int err = next < 0 ? -errno : 0;
        close(fd);
        if (next < 0)
            return err;
        fd = next;
        p = slash + 1;
    }
    size_t bl = strlen(p);
    if (p[0] == '.' && bl >= 6 && strcmp(p + bl - 5, ".part") == 0) {
        close(fd); /* the form of our temp files: a received file may not take it */
        return -FY_ENAME;
    }
    *pdir = fd;
    *base = p;
    return 0;
}
