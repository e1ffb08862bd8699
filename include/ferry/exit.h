/*
 * exit.h - the exit status every Ferry program (ferry, ferryd, ferry-trace,
 * ferry-swarm) gives for a usage error, so a script can tell "you called
 * it wrong" from "it ran and failed" the same way for all four.
 *
 * 64 is EX_USAGE from sysexits.h: outside the small codes each program
 * already gives a meaning (ferry's 1-5 are a documented contract, see
 * docs/client.md) and outside 128+N (killed by signal N).
 */
#ifndef FERRY_EXIT_H
#define FERRY_EXIT_H

#define FY_EXIT_USAGE 64 /* bad flag, option value or argument (EX_USAGE) */

#endif
