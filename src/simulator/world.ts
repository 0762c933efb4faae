import type { Contract, Customer, Dataset, Option, Person, Product, Project, Service } from './dataset';
import type { SimUser } from './users';

/** What someone in the ERP's UI can set on a service out of band (the list columns and their neighbours). */
export type ServiceEdit = Partial<Pick<Service,
  'title' | 'company' | 'contract' | 'chance' | 'product' | 'sort1' | 'great1' | 'result1' | 'way1' | 'cateid' | 'cate' | 'addcate' |
  'person' | 'phone' | 'mobile' | 'introts' | 'introN' | 'introb' | 'intro' | 'money1' | 'date1' | 'sharedWith'>>;

/** Look-ups over the dataset that the handlers share. */
export class World {
  private readonly customers: Map<number, Customer>;
  private readonly people: Map<number, Person>;
  private readonly contracts: Map<number, Contract>;
  private readonly products: Map<number, Product>;
  private readonly projects: Map<number, Project>;
  private readonly services: Map<number, Service>;
  private nextOrd: number;

  constructor(readonly data: Dataset) {
    this.customers = new Map(data.customers.map((c) => [c.id, c]));
    this.people = new Map(data.people.map((p) => [p.id, p]));
    this.contracts = new Map(data.contracts.map((c) => [c.id, c]));
    this.products = new Map(data.products.map((p) => [p.id, p]));
    this.projects = new Map(data.projects.map((p) => [p.id, p]));
    this.services = new Map(data.services.map((s) => [s.ord, s]));
    this.nextOrd = Math.max(0, ...data.services.map((s) => s.ord)) + 1;
  }

  customer(id: number): Customer | undefined {
    return this.customers.get(id);
  }
  person(id: number): Person | undefined {
    return this.people.get(id);
  }
  contract(id: number | null): Contract | undefined {
    return id === null ? undefined : this.contracts.get(id);
  }
  product(id: number | null): Product | undefined {
    return id === null ? undefined : this.products.get(id);
  }
  project(id: number | null): Project | undefined {
    return id === null ? undefined : this.projects.get(id);
  }
  /** A live (not deleted) service. */
  service(ord: number): Service | undefined {
    const s = this.services.get(ord);
    return s && !s.del ? s : undefined;
  }
  liveServices(): Service[] {
    return this.data.services.filter((s) => !s.del);
  }
  /** An add page called without `ord` hands out a fresh id (the ERP reserves it; we only count). */
  allocateOrd(): number {
    return this.nextOrd++;
  }

  /**
   * Out of band, as someone in the ERP's own UI would: a new service, stored at once. It gets the next `ord` and, unless
   * given, an accepted date one minute after the newest service's, so the list (newest first, by date or by id) shows it
   * first; everything else not given is copied from the newest service. Returns the stored record.
   */
  add(fields: ServiceEdit = {}): Service {
    const newest = this.data.services.reduce((a, b) => (b.date1.getTime() > a.date1.getTime() ? b : a));
    const ord = this.allocateOrd();
    const date1 = fields.date1 ?? new Date(Math.max(...this.data.services.map((s) => s.date1.getTime())) + 60_000);
    const service: Service = {
      ...newest,
      cateid: [...newest.cateid],
      sharedWith: [],
      ...fields,
      ord,
      shid: `SH${date1.getUTCFullYear()}${String(date1.getUTCMonth() + 1).padStart(2, '0')}${String(ord).padStart(5, '0')}`,
      date1,
      del: false,
    };
    this.data.services.push(service);
    this.services.set(ord, service);
    return service;
  }

  /** Out of band: changes a live service's fields in place, as a save in the ERP's UI would. */
  edit(ord: number, changes: ServiceEdit): Service {
    const service = this.service(ord);
    if (!service) throw new Error(`simulator: no live service ${ord} to edit`);
    Object.assign(service, changes);
    return service;
  }

  /** Out of band: deletes a service the way the ERP does (the `del` flag): the list drops it, the detail says deleted. */
  remove(ord: number): void {
    const service = this.service(ord);
    if (!service) throw new Error(`simulator: no live service ${ord} to delete`);
    service.del = true;
  }

  personNames(ids: number[]): string {
    return ids.map((id) => this.person(id)?.name ?? '').filter(Boolean).join(' ');
  }

  /** The ERP's row-level permission: what a non-admin user may see. */
  canSee(user: SimUser, s: Service): boolean {
    if (user.seeAll) return true;
    const me = user.personId;
    return s.cateid.includes(me) || s.addcate === me || s.sharedWith.includes(me) || s.cate === me;
  }
}

export function optionName(options: Option[], id: number): string {
  return options.find((o) => o.id === id)?.name ?? '';
}
