// TensorFlowLite.h of the gesture-kit host shim: the Arduino library's umbrella header only lets
// the IDE find the library; on the host the TFLM tree is on the include path instead.
#pragma once
