/* barge-agent: the control plane. */
#include <stdio.h>

int main(void)
{
    puts("barge-agent");
    return 0;
}
