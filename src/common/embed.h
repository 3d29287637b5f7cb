/* Files built into the binary with .incbin: BARGE_EMBED("sym", "path") is
 * assembler text for a top-level __asm__ that defines `sym`, the file's bytes
 * with a NUL after them, and `sym_len`, a 64-bit length that excludes the NUL,
 * both in .rodata so they are shared and read-only. The path is relative to
 * the directory the compiler runs in (the Makefile: the repository root); the
 * object's rule lists the files as its dependencies. Declare them in C as
 * `extern const char sym[]; extern const uint64_t sym_len;`. */
#ifndef BARGE_COMMON_EMBED_H
#define BARGE_COMMON_EMBED_H

#define BARGE_EMBED(sym, file)                   \
    ".pushsection .rodata,\"a\",@progbits\n"     \
    ".balign 16\n"                               \
    ".globl " sym "\n"                           \
    ".type " sym ", @object\n" sym ":\n"         \
    ".incbin \"" file "\"\n"                     \
    ".L" sym "_end:\n"                           \
    ".byte 0\n"                                  \
    ".size " sym ", . - " sym "\n"               \
    ".balign 8\n"                                \
    ".globl " sym "_len\n"                       \
    ".type " sym "_len, @object\n" sym "_len:\n" \
    ".quad .L" sym "_end - " sym "\n"            \
    ".size " sym "_len, 8\n"                     \
    ".popsection\n"

#endif
