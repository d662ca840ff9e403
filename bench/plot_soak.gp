# SPDX-License-Identifier: BSL-1.0
# The soak test over time (scripts/soak.sh runs it after bench/soak.py report):
#   gnuplot -e "raw='RAW_DIR'; out='bench/results/soak.png'; warmup=120; window=60; run=300" \
#     bench/plot_soak.gp
# Three panels, both stores on each: the server's resident memory, its open descriptors, and
# the session saves and creations per second (from /healthz). Grey bands: the two windows the
# soak compares (the first after the warm-up, the last of the run).
set terminal pngcairo size 960,900 font "DejaVu Sans,9"
set output out
mem = sprintf("%s/memory.tsv", raw)
red = sprintf("%s/redis.tsv", raw)
set multiplot layout 3,1 title sprintf("websession soak: example server under wrk, %g s per store (warm-up %g s)", run, warmup)
set grid lc rgb "#dddddd"
set lmargin 10
set rmargin 10
set xrange [0:run]
set key top left horizontal font ",8"
set style rect fc rgb "#eeeeee" fs solid 1.0 noborder
set object 1 rect from warmup, graph 0 to warmup + window, graph 1 behind
set object 2 rect from run - window, graph 0 to run, graph 1 behind
set xlabel "seconds since wrk started"

set title "resident memory (VmRSS)"
set ylabel "MiB"
set yrange [0:*]
plot mem u 1:2 w l lw 2 t "memory store", red u 1:2 w l lw 2 t "redis store"

set title "open descriptors (/proc/PID/fd)"
set ylabel "descriptors"
set yrange [0:*]
plot mem u 1:3 w l lw 2 t "memory store", red u 1:3 w l lw 2 t "redis store"

set title "sessions per second (/healthz counters): saves (left axis), new sessions (right axis)"
set ylabel "saves per second"
set y2label "sessions created per second"
set yrange [0:*]
set y2range [0:*]
set ytics nomirror
set y2tics
plot mem u 1:4 w l lw 1.5 t "saves, memory store", red u 1:4 w l lw 1.5 t "saves, redis store", \
     mem u 1:5 axes x1y2 w l lw 1.5 dt 2 t "created, memory store", \
     red u 1:5 axes x1y2 w l lw 1.5 dt 2 t "created, redis store"
unset multiplot
