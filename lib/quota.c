/* quota: see quota.h. */
#include "quota.h"
#include "task.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

void quota_init(struct quota_table *q)
{
    *q = (struct quota_table){.by_name = hashmap_new(), .n_slots = 1};
}

void quota_done(struct quota_table *q)
{
    for (size_t i = 1; i < q->n_slots; i++)
        free(q->slots[i].name);
    free(q->slots);
    hashmap_free(q->by_name);
    *q = (struct quota_table){0};
}

static uint16_t slot_of(const struct quota_table *q, const char *name)
{
    return (uint16_t) (uintptr_t) hashmap_get(q->by_name, name);
}

/* The principal's slot, made when it has none; 0 when none is left. */
static uint16_t slot_get(struct quota_table *q, const char *name)
{
    uint16_t n = slot_of(q, name);
    if (n)
        return n;
    if (q->free_head) {
        n = q->free_head;
        q->free_head = q->slots[n].next_free;
    } else if (q->n_slots <= QUOTA_SLOTS_MAX) {
        size_t alloc = q->n_slots;
        q->slots = xrealloc(q->slots, (alloc + 1) * sizeof(*q->slots));
        n = (uint16_t) q->n_slots++;
    } else
        return 0;
    q->slots[n] = (struct quota_slot){.name = xstrdup(name)};
    hashmap_put(q->by_name, q->slots[n].name, (void *) (uintptr_t) n);
    return n;
}

static void slot_put(struct quota_table *q, uint16_t n)
{
    struct quota_slot *s = &q->slots[n];
    if (s->use.tasks > 0 || s->use.queued > 0)
        return;
    hashmap_remove(q->by_name, s->name);
    free(s->name);
    *s = (struct quota_slot){.next_free = q->free_head};
    q->free_head = n;
}

int quota_charge(struct quota_table *q, const char *name, const struct policy *pol, double cores,
                 uint64_t memory, uint16_t *ret_slot, struct error *err)
{
    const struct policy_quota *lim = &pol->quota;
    uint16_t n = slot_of(q, name);
    struct quota_usage u = n ? q->slots[n].use : (struct quota_usage){0};
    char a[32], b[32], c[32];

    if (lim->running && u.tasks + 1 > lim->running)
        return error_set(err, -EUSERS,
                         "quota: principal %s has %" PRIu64 " tasks queued or running, its quota "
                         "of running tasks (principals.%s.quota.running); try again when one ends",
                         name, u.tasks, pol->name);
    if (lim->queued && u.queued + 1 > lim->queued)
        return error_set(err, -EUSERS,
                         "quota: principal %s has %" PRIu64 " tasks queued, its quota "
                         "(principals.%s.quota.queued); try again when one starts",
                         name, u.queued, pol->name);
    if (lim->cores > 0 && u.cores + cores > lim->cores + 1e-9)
        return error_set(err, -EUSERS,
                         "quota: principal %s's tasks queued or running hold %g cores; %g more "
                         "would pass its quota of %g (principals.%s.quota.cores)",
                         name, u.cores, cores, lim->cores, pol->name);
    if (lim->memory && u.memory + memory > lim->memory)
        return error_set(err, -EUSERS,
                         "quota: principal %s's tasks queued or running hold %s of memory; %s "
                         "more would pass its quota of %s (principals.%s.quota.memory)",
                         name, format_size_human(u.memory, a), format_size_human(memory, b),
                         format_size_human(lim->memory, c), pol->name);
    if (!n)
        n = slot_get(q, name);
    if (!n)
        return error_set(err, -EAGAIN, "the proxy counts the tasks of at most %d principals",
                         QUOTA_SLOTS_MAX);
    struct quota_usage *use = &q->slots[n].use;
    use->tasks++;
    use->queued++;
    use->cores += cores;
    use->memory += memory;
    *ret_slot = n;
    return 0;
}

uint16_t quota_count(struct quota_table *q, const char *name, double cores, uint64_t memory)
{
    uint16_t n = slot_get(q, name);
    if (n) {
        struct quota_usage *use = &q->slots[n].use;
        use->tasks++;
        use->cores += cores;
        use->memory += memory;
    }
    return n;
}

void quota_queued(struct quota_table *q, uint16_t slot)
{
    if (slot)
        q->slots[slot].use.queued++;
}

void quota_dequeued(struct quota_table *q, uint16_t slot)
{
    if (slot && q->slots[slot].use.queued > 0)
        q->slots[slot].use.queued--;
}

void quota_release(struct quota_table *q, uint16_t slot, double cores, uint64_t memory)
{
    if (!slot)
        return;
    struct quota_usage *use = &q->slots[slot].use;
    if (use->tasks > 0)
        use->tasks--;
    use->memory -= MIN(use->memory, memory);
    use->cores =
        use->tasks && use->cores > cores ? use->cores - cores : 0; /* no rounding left over */
    slot_put(q, slot);
}

const char *quota_name(const struct quota_table *q, uint16_t slot)
{
    return slot ? q->slots[slot].name : NULL;
}

struct quota_usage quota_usage_of(const struct quota_table *q, const char *name)
{
    uint16_t n = slot_of(q, name);
    return n ? q->slots[n].use : (struct quota_usage){0};
}

int quota_check_stored(const char *name, const struct policy *pol, uint64_t stored,
                       struct error *err)
{
    char a[32], b[32];
    if (pol->quota.stored && stored >= pol->quota.stored)
        return error_set(err, -EUSERS,
                         "quota: principal %s's ended tasks keep %s under the data directory, "
                         "its quota of %s (principals.%s.quota.stored); delete ended tasks to "
                         "free it",
                         name, format_size_human(stored, a),
                         format_size_human(pol->quota.stored, b), pol->name);
    return 0;
}

#define DIR_DEPTH_MAX 8

static uint64_t bytes_at(int dir_fd, dev_t dev, unsigned depth)
{
    DIR *d = fdopendir(dir_fd);
    if (!d) {
        close(dir_fd);
        return 0;
    }
    uint64_t sum = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        if (streq(e->d_name, ".") || streq(e->d_name, "..") ||
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISREG(st.st_mode))
            sum += (uint64_t) st.st_size;
        else if (S_ISDIR(st.st_mode) && st.st_dev == dev && depth < DIR_DEPTH_MAX) {
            int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd >= 0)
                sum += bytes_at(fd, dev, depth + 1);
        }
    }
    closedir(d);
    return sum;
}

uint64_t quota_dir_bytes(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return 0;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return 0;
    }
    return bytes_at(fd, st.st_dev, 0);
}
