/*
 * tree.h - directory trees for `ferry send -r` and `ferry recv`.
 *
 * A file's name on the wire is a relative path (fy_path_check): `ferry
 * send -r photos` sends photos/a.jpg and photos/b/c.jpg, and a receiver
 * writes them under its --out as the same relative paths.  The sender's
 * half walks the directories given (sorted, regular files only); the
 * receiver's half opens the parent directory of a name under --out one
 * component at a time, creating what is missing and never following a
 * symlink, so no name can make it write outside --out.
 */
#ifndef FY_CLI_TREE_H
#define FY_CLI_TREE_H

#include <stdbool.h>
#include <stddef.h>

/* The files to send, args expanded.  names[i] is NULL when the name is
 * the base name of files[i] (the caller decides then, as for a plain
 * FILE).  Owns its strings: fy_cli_tree_free. */
typedef struct fy_cli_tree_list {
    const char **files, **names;
    size_t n, cap;
    char **own; /* strings allocated here */
    size_t nown, capown;
} fy_cli_tree_list;

/* Expand args[0..n): a directory (recursive only; else -EISDIR with *bad
 * naming it) becomes its regular files, depth first in name order, named
 * BASE/REL where BASE is the directory's last path component; any other
 * arg is kept with names[i] = given[i] (may be NULL).  Symlinks, devices,
 * sockets and fifos inside a tree are skipped with a warning line; a tree
 * deeper than 64 levels or a path name longer than FY_NAME_MAX is an
 * error (-ELOOP / -ENAMETOOLONG, *bad naming it).  0 or -errno. */
int fy_cli_tree_expand(const char *const *args, const char *const *given, size_t n,
                       bool recursive, fy_cli_tree_list *out, const char **bad);
void fy_cli_tree_free(fy_cli_tree_list *l);

/* Receiver: the directory that holds `path` (a relative wire name) under
 * dirfd, created as needed (mode 0755 less the umask), as a new fd in
 * *pdir, and a pointer into path at its last component in *base.  Checks
 * path again (fy_path_check; never the state file .ferry-state nor a
 * last component of the temp files' form ".*.part": -FY_ENAME) and refuses a component that is a
 * symlink or not a directory (-ELOOP / -ENOTDIR).  0 or -errno. */
int fy_cli_tree_parent(int dirfd, const char *path, int *pdir, const char **base);

#endif
