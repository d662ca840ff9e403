# SPDX-License-Identifier: BSL-1.0
# Latency percentiles per store (scripts/bench.sh runs it after bench/report.py):
#   gnuplot -e "raw='RAW_DIR'; out='bench/results/latency.png'" bench/plot_latency.gp
# Each panel: the five scenarios of the 1 KB encrypted cell, one request at a time (solid), load
# with 64 coroutines (dashed), and the baseline (points: the memory load floor = map find+copy
# + AES open + JSON parse p50s; redis-benchmark GET p50 and p99).
set terminal pngcairo size 960,460 font "DejaVu Sans,9"
set output out
set multiplot layout 1,2 title "websession: latency percentiles, 1 KB session, AES-256-GCM"
set logscale y
set grid ytics mytics lc rgb "#dddddd"
set xrange [-0.2:3.2]
set xtics ("p50" 0, "p90" 1, "p99" 2, "p99.9" 3)
set ylabel "microseconds"
set key below horizontal maxcols 3 width -3 font ",8" spacing 0.9
set style data linespoints
array ttl[2] = ["memory store, 1 thread", "redis store (redis-server on the other CPU), 1 thread"]
array st[2] = ["memory", "redis"]
array base[2] = ["load floor", "redis-benchmark GET"]
do for [i=1:2] {
  set title ttl[i]
  c1 = sprintf("%s/plot_%s_c1.dat", raw, st[i])
  c64 = sprintf("%s/plot_%s_c64.dat", raw, st[i])
  b = sprintf("%s/plot_%s_base.dat", raw, st[i])
  if (i == 1) {
    plot c1 u 1:3 t "create" lw 2 pt 7 ps 0.6, \
         c1 u 1:4 t "load" lw 2 pt 7 ps 0.6, \
         c1 u 1:5 t "load+save" lw 2 pt 7 ps 0.6, \
         c1 u 1:6 t "rotate" lw 2 pt 7 ps 0.6, \
         c1 u 1:7 t "destroy" lw 2 pt 7 ps 0.6, \
         c64 u 1:4 t "load, 64 coro." lw 2 dt 2 pt 6 ps 0.6, \
         b index 0 u 1:2 w points t base[i] pt 5 ps 1.2 lc rgb "black"
  } else {
    plot c1 u 1:3 t "create" lw 2 pt 7 ps 0.6, \
         c1 u 1:4 t "load" lw 2 pt 7 ps 0.6, \
         c1 u 1:5 t "load+save" lw 2 pt 7 ps 0.6, \
         c1 u 1:6 t "rotate" lw 2 pt 7 ps 0.6, \
         c1 u 1:7 t "destroy" lw 2 pt 7 ps 0.6, \
         c64 u 1:4 t "load, 64 coro." lw 2 dt 2 pt 6 ps 0.6, \
         b index 0 u 1:2 w points t "GET -c 1" pt 5 ps 1.2 lc rgb "black", \
         b index 1 u 1:2 w points t "GET -c 50" pt 4 ps 1.2 lc rgb "black"
  }
}
unset multiplot
