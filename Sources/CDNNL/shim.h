#include <oneapi/dnnl/dnnl.h>
// mallopt: the engine pins glibc's mmap threshold so freed weight buffers leave the process (see Engine.swift).
#include <malloc.h>
