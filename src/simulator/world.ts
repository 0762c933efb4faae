import type { Contract, Customer, Dataset, Option, Person, Product, Project, Service } from './dataset';
import type { SimUser } from './users';

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
