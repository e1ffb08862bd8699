# throughput.gp - delivered MB/s against the number of receivers, one line per
# target (p2p, ferry-baseline, ferryd): aggregate on the left, per receiver
# on the right.  bench/run calls it with
#   gnuplot -e "datafile='throughput.dat'; outfile='throughput.png'; termname='pngcairo'"
# Data columns: receivers, aggregate p2p/baseline/ferryd, per-receiver p2p/baseline/ferryd;
# '?' marks a run that gave no figure.
if (!exists("termname")) termname = 'pngcairo'
if (!exists("datafile")) datafile = 'throughput.dat'
if (!exists("outfile")) outfile = 'throughput.png'

set terminal termname size 1100,480
set output outfile
set datafile missing '?'
set key below horizontal
set format y "%g"
set grid
set logscale x 2
set logscale y 10
set xrange [0.8:80]
set xtics ("1" 1, "4" 4, "16" 16, "64" 64)
set xlabel "receivers (1 sender, 64 KiB packets)"

set multiplot layout 1,2 title "Ferry: throughput against receivers (MB/s = 10^6 B/s of payload)"
set title "aggregate delivered"
set ylabel "MB/s"
plot datafile using 1:2 with linespoints lw 2 pt 7 title "p2p", \
     datafile using 1:3 with linespoints lw 2 pt 5 title "ferry-baseline", \
     datafile using 1:4 with linespoints lw 2 pt 9 title "ferryd"
set title "per receiver (mean)"
plot datafile using 1:5 with linespoints lw 2 pt 7 title "p2p", \
     datafile using 1:6 with linespoints lw 2 pt 5 title "ferry-baseline", \
     datafile using 1:7 with linespoints lw 2 pt 9 title "ferryd"
unset multiplot
