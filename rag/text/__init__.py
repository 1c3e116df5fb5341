"""Text utilities every step shares: sentence spans with character offsets (`sentences.py`) and words, stems,
news synonyms, opposites and answer types (`words.py`)."""
