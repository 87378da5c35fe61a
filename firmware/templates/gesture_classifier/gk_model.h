// gk_model.h: the TFLM-facing part of the classifier sketch (model setup, switch, invoke).
//
// Plain C++ with no Arduino dependency: gk_model.cpp compiles against any TensorFlow Lite Micro
// source tree (the sketch's bundled src/tflm, or a TFLM checkout). The .ino only passes a log
// function, so boot messages reach Serial without this file knowing about Serial.
//
// The model is not compiled in: it comes with its gk::Config from a model package (the built-in
// one in model_data.cpp, or a pushed one in a flash slot), parsed by gk_package_parse.h. The
// resolver holds every op the kit's model families emit (plus the built-in model's), the arena
// is GK_MAX_ARENA_BYTES, and the interpreter is placement-constructed in static storage, so
// model_switch() can tear it down and build another in the same arena at run time.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "gk_package_parse.h"

namespace gk {

typedef void (*LogFn)(const char* line);

// Sets up the interpreter for `payload` (the .tflite bytes, 16-byte aligned, alive as long as the
// model runs) described by `cfg`: schema version, flatbuffer structure, every op in the resolver,
// AllocateTensors() within the arena, the tensors against cfg (int8 input of window x channels
// with cfg's zero point, int8 softmax output of n_labels). Returns false after logging why and
// filling *err (when given) with the PushError code (SCHEMA, BAD_HEADER, MISSING_OP, ARENA, SHAPE)
// and the reason; no model runs then.
bool model_setup(const Config& cfg, const uint8_t* payload, size_t len, LogFn log, PackageError* err = 0);

// Replaces the running model by another (call between windows). On any failure of the new one the
// old one is set up again in the same arena and keeps running: false, with *err saying why.
// Without a running model it is model_setup().
bool model_switch(const Config& cfg, const uint8_t* payload, size_t len, LogFn log, PackageError* err = 0);

// input: the running model's window x channels int8 values; output: its n_labels int8 scores.
bool model_invoke(const int8_t* input, int8_t* output);

// Bytes of the arena the interpreter actually uses (printed at boot), 0 without a model.
size_t model_arena_used();

// Whether a model is set up and runs.
bool model_ready();

}  // namespace gk
