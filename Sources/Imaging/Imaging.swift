// Poster decoding and Pillow-exact preprocessing.
