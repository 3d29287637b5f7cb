/* barge: the CLI. */
#include <stdio.h>

int main(void)
{
    puts("barge");
    return 0;
}
