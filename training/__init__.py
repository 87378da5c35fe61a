"""Dataset loading, preprocessing, model, int8 quantization, TFLM evaluation, sketch export."""
