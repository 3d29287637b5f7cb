/* barged: the control plane. */
#include <stdio.h>

int main(void)
{
    puts("barged");
    return 0;
}
