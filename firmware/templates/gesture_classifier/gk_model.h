// gk_model.h: the TFLM-facing part of the classifier sketch (model setup + invoke).
//
// Plain C++ with no Arduino dependency: gk_model.cpp compiles against any TensorFlow Lite Micro
// source tree (the Arduino library, or a TFLM checkout with its Makefile). The .ino only passes a
// log function, so boot messages reach Serial without this file knowing about Serial.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace gk {

typedef void (*LogFn)(const char* line);

// Maps the model, registers exactly its ops, allocates the arena and checks that the tensors
// match gk_config.h (shape, int8, quantization). Returns false after logging why.
bool model_setup(LogFn log);

// input: GK_INPUT_BYTES int8 values (window x channels); output: GK_N_LABELS int8 scores.
bool model_invoke(const int8_t* input, int8_t* output);

// Bytes of the arena the interpreter actually uses (printed at boot), 0 before setup.
size_t model_arena_used();

}  // namespace gk
