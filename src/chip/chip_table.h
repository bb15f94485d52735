/* Private to src/chip: the table rows, indexed by enum chip_model. */
#ifndef ES_CHIP_TABLE_H
#define ES_CHIP_TABLE_H

#include "es/chip.h"

extern const struct chip chip_table[CHIP_MODEL_COUNT];

#endif
