#!/usr/bin/env bash
# Checks beside tools/gpu_check on a lent GPU machine: the README's
# `xpnet train` timed on each GPU backend (issue 14: jax <= 1.2x cupy; CuPy
# twice, since its first run compiles kernels into ~/.cupy/kernel_cache) and
# `mpiexec -n 2 xpnet train --distributed --backend cupy` sharing one GPU
# (issue 11). Run from the repository root with xpnet importable.
set -u
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
py=${PYTHON:-python3}
for b in ${BACKENDS:-cupy cupy jax torch numpy}; do
  s=$(date +%s%N)
  $py -m xpnet train --backend "$b" --save "/tmp/xpnet-$b.safetensors" >"/tmp/xpnet-train-$b.log" 2>&1
  rc=$?
  e=$(date +%s%N)
  tail -2 "/tmp/xpnet-train-$b.log"
  echo "== xpnet train --backend $b: $(( (e - s) / 1000000 )) ms wall (exit $rc)"
done
echo "== mpiexec -n 2 xpnet train --distributed --backend cupy --epochs 30"
timeout 60 mpiexec -n 2 $py -m xpnet train --distributed --backend cupy --epochs 30 >/tmp/xpnet-mpi.log 2>&1
rc=$?
grep -v "epoch/s" /tmp/xpnet-mpi.log | head -12
echo "== exit $rc"
