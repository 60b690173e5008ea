#!/bin/sh
# the example's program: greets from wherever it runs
echo "greet.sh: hello from $(hostname)"
