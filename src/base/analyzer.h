/*
 * analyzer.h - FY_ANALYZER_ASSUME(cond): tells the clang static analyser
 * (.ci/scan) an invariant it cannot follow, so it stops reporting a path
 * that cannot happen.  Only the analyser sees the condition: in every
 * build, release and debug alike, the macro is empty, so the condition must
 * have no side effects.  Prefer fixing the code; use this only for a false
 * positive, with a one-line comment at the site on why it is one, and list
 * it in docs/development.md.
 */
#ifndef FY_BASE_ANALYZER_H
#define FY_BASE_ANALYZER_H

#ifdef __clang_analyzer__
#define FY_ANALYZER_ASSUME(cond)          \
    do {                                  \
        if (!(cond))                      \
            __builtin_unreachable();      \
    } while (0)
#else
#define FY_ANALYZER_ASSUME(cond) ((void)0)
#endif

#endif
