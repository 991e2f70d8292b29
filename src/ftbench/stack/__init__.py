"""What a case trains with: checkpoints (and GGUF), methods (LoRA, QLoRA), padding strategies,
data (sentence pairs, chat rows) and the data's identity.
"""
