import {
  Module,
  type DynamicModule,
  type FactoryProvider,
  type ModuleMetadata,
} from '@nestjs/common';
import { ESTIMATOR_OPTIONS, type EstimatorOptions } from './estimator.options';
import { TokenEstimatorService } from './token-estimator.service';

export interface EstimatorModuleAsyncOptions {
  readonly imports?: ModuleMetadata['imports'];
  readonly inject?: FactoryProvider['inject'];
  readonly useFactory: FactoryProvider<EstimatorOptions>['useFactory'];
}

/** Provides `TokenEstimatorService`; import it where the service is needed (not global). */
@Module({})
export class EstimatorModule {
  static forRoot(options: EstimatorOptions): DynamicModule {
    return {
      module: EstimatorModule,
      global: false,
      providers: [{ provide: ESTIMATOR_OPTIONS, useValue: options }, TokenEstimatorService],
      exports: [TokenEstimatorService],
    };
  }

  /** Same, with the options built from other providers (e.g. the app configuration). */
  static forRootAsync(options: EstimatorModuleAsyncOptions): DynamicModule {
    return {
      module: EstimatorModule,
      global: false,
      imports: options.imports ?? [],
      providers: [
        {
          provide: ESTIMATOR_OPTIONS,
          useFactory: options.useFactory,
          inject: options.inject ?? [],
        },
        TokenEstimatorService,
      ],
      exports: [TokenEstimatorService],
    };
  }
}
