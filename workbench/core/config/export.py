"""The export formats Workbench offers, their file names and the largest difference each may show."""

FORMATS = ("keras", "savedmodel", "tflite", "tflite-dynamic", "tflite-int8", "onnx")
# The largest probability difference from the original model each format may show; for
# tflite-int8 it is the largest drop in validation accuracy instead (or one image, on few images).
# Largest difference in any class probability between the exported and the original model. Weights
# stored as int8 (dynamic range) move a small model's probabilities by up to ~0.05 (0.053 measured on
# the test suite's 2-epoch model), so 0.1 there; float formats must agree to rounding.
TOLERANCE = {"keras": 1e-4, "savedmodel": 1e-4, "tflite": 1e-4, "tflite-dynamic": 0.1,
             "tflite-int8": 0.05, "onnx": 1e-4}
FILE_NAMES = {"keras": "model.keras", "savedmodel": "saved_model", "tflite": "model.tflite",
              "tflite-dynamic": "model.tflite", "tflite-int8": "model.tflite", "onnx": "model.onnx"}
LABELS_FILE = "labels.txt"
INT8_IO = ("int8", "uint8")  # the input and output types a full-int8 TFLite model may take
