# latency.gp - rate-mode latency percentiles (send time -> arrival), one line
# per target, each target offered half of its own measured peak.  bench/run
# calls it with
#   gnuplot -e "datafile='latency.dat'; outfile='latency.png'; termname='pngcairo'"
# Data columns: index, percentile label, p2p, baseline, ferryd (microseconds);
# '?' marks a missing figure.
if (!exists("termname")) termname = 'pngcairo'
if (!exists("datafile")) datafile = 'latency.dat'
if (!exists("outfile")) outfile = 'latency.png'

set terminal termname size 900,480
set output outfile
set datafile missing '?'
set title "Ferry: latency at half of each target's peak (16 receivers, 128-byte messages)"
set key below horizontal
set format y "%g"
set grid
set logscale y 10
set ylabel "microseconds"
set xlabel "percentile"
set xrange [-0.3:4.3]
plot datafile using 1:3:xtic(2) with linespoints lw 2 pt 7 title "p2p", \
     datafile using 1:4 with linespoints lw 2 pt 5 title "ferry-baseline", \
     datafile using 1:5 with linespoints lw 2 pt 9 title "ferryd"
