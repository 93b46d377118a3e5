#include <oneapi/dnnl/dnnl.h>
// malloc_trim: the models give the heap's free pages back after loading (see ProcessHeap.swift).
#include <malloc.h>
