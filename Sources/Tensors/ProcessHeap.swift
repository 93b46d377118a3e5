#if canImport(Glibc)
import Glibc
#endif
import CDNNL  // its shim brings in <malloc.h>

/// The process heap, as the models' loading leaves it.
public enum ProcessHeap {
    /// Gives the heap's free pages back to the system (glibc `malloc_trim`), including holes in the middle of it.
    ///
    /// Loading a model allocates and frees large plain copies of its weights. Once glibc has seen such a block
    /// freed it raises its mmap threshold and serves later large blocks from the heap, and the pages those blocks
    /// leave behind when freed stay resident. The models call this at the end of their load: 140 MiB less resident
    /// after loading the three models (828 against 968 MiB, `postersim-bench embed`). Pinning the mmap threshold
    /// instead saved as much but made every later large block a fresh mapping, and decoding and preprocessing a
    /// poster 0.5 ms slower per step, so it was not kept.
    public static func returnFreePages() {
        #if canImport(Glibc)
        _ = malloc_trim(0)
        #endif
    }
}
