/* startup_m4.c: reset code of the `gesture verify` firmware for QEMU's mps2-an386 (Cortex-M4F).
 *
 * Why our own startup and not newlib's rdimon-crt0: that crt0 has no Cortex-M vector table and
 * takes the stack from the SYS_HEAPINFO semihosting call. Here the vector table comes first in
 * flash (0x00000000, where the M4 reads the initial SP and reset vector), the FPU is enabled
 * before any float instruction (CPACR CP10/CP11, bits 20-23), .data is copied and .bss zeroed,
 * newlib's semihosting I/O is opened, and main's return value ends QEMU through exit(). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern uint32_t __stack_top, __data_load, __data_start, __data_end, __bss_start__, __bss_end__;
extern void initialise_monitor_handles(void);
extern void __libc_init_array(void);
extern int main(void);

void _init(void) {}  /* __libc_init_array calls these; crti.o is not linked (-nostartfiles) */
void _fini(void) {}
void* __dso_handle = 0;  /* crtbegin.o's, for the destructors of function-local statics */

__attribute__((noreturn)) void Reset_Handler(void) {
  volatile uint32_t* cpacr = (volatile uint32_t*)0xE000ED88u;
  *cpacr |= 0xFu << 20;
  __asm volatile("dsb\n\tisb" ::: "memory");
  memcpy(&__data_start, &__data_load, (size_t)((char*)&__data_end - (char*)&__data_start));
  memset(&__bss_start__, 0, (size_t)((char*)&__bss_end__ - (char*)&__bss_start__));
  initialise_monitor_handles();
  __libc_init_array();
  exit(main());
}

__attribute__((noreturn)) static void Fault_Handler(void) { exit(99); }

typedef void (*Vector)(void);
__attribute__((section(".vectors"), used)) const Vector g_vectors[16] = {
    (Vector)(uintptr_t)&__stack_top, Reset_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, 0, 0, 0, 0, Fault_Handler, Fault_Handler, 0, Fault_Handler, Fault_Handler,
};
