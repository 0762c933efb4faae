/** Who may log in to the simulated ERP. */
export interface SimUser {
  name: string;
  password: string;
  /** The person id of this user in the dataset. */
  personId: number;
  /** Sees every service; otherwise only those assigned to, created by or shared with the user (ERP permissions). */
  seeAll: boolean;
  state: 'active' | 'invalid' | 'frozen';
}

export const DEFAULT_SIMULATOR_USER = 'admin';
export const DEFAULT_SIMULATOR_PASSWORD = 'zb-sim-admin';

export function defaultUsers(adminName: string, adminPassword: string): SimUser[] {
  return [
    { name: adminName, password: adminPassword, personId: 1, seeAll: true, state: 'active' },
    { name: 'zhangwei', password: 'zhangwei-pass', personId: 2, seeAll: false, state: 'active' },
    { name: 'lina', password: 'lina-pass', personId: 3, seeAll: false, state: 'active' },
  ];
}
